//! OS strings (arguments, paths, environment variables) in JSON, byte for
//! byte. Unix allows any bytes but NUL in them, JSON strings only UTF-8:
//! a value that is UTF-8 is written as a JSON string, any other as an array
//! of its bytes. Reading takes either form. Use the modules with
//! `#[serde(with = "...")]`.
//!
//! ```
//! use std::ffi::OsString;
//! use std::os::unix::ffi::OsStringExt;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, PartialEq, Debug)]
//! struct Job {
//!     #[serde(with = "jobs_core::os_serde::strings")]
//!     argv: Vec<OsString>,
//! }
//!
//! let job = Job { argv: vec!["ls".into(), OsString::from_vec(b"caf\xe9".to_vec())] };
//! let json = serde_json::to_string(&job)?;
//! assert_eq!(json, r#"{"argv":["ls",[99,97,102,233]]}"#);
//! assert_eq!(serde_json::from_str::<Job>(&json)?, job);
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One OS string as it is written.
struct Out<'a>(&'a OsStr);

impl Serialize for Out<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.to_str() {
            Some(text) => s.serialize_str(text),
            None => self.0.as_bytes().serialize(s),
        }
    }
}

/// One OS string as it is read.
struct In(OsString);

impl<'de> Deserialize<'de> for In {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = In;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of bytes")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<In, E> {
                Ok(In(OsString::from(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<In, E> {
                Ok(In(OsString::from(v)))
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<In, E> {
                Ok(In(OsString::from_vec(v.to_vec())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<In, A::Error> {
                let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(b) = seq.next_element::<u8>()? {
                    bytes.push(b);
                }
                Ok(In(OsString::from_vec(bytes)))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `OsString`.
pub mod string {
    use super::*;

    /// Writes a UTF-8 value as a string, any other as its bytes.
    pub fn serialize<S: Serializer>(v: &OsStr, s: S) -> Result<S::Ok, S::Error> {
        Out(v).serialize(s)
    }

    /// Reads a string or an array of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OsString, D::Error> {
        In::deserialize(d).map(|i| i.0)
    }
}

/// An optional `OsString`.
pub mod opt_string {
    use super::*;

    /// Writes the value as [`string`] does, or null.
    pub fn serialize<S: Serializer>(v: &Option<OsString>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().map(Out).serialize(s)
    }

    /// Reads null, a string or an array of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OsString>, D::Error> {
        Ok(Option::<In>::deserialize(d)?.map(|i| i.0))
    }
}

/// An optional `PathBuf`.
pub mod opt_path {
    use std::path::PathBuf;

    use super::*;

    /// Writes the path as [`string`] does, or null.
    pub fn serialize<S: Serializer>(v: &Option<PathBuf>, s: S) -> Result<S::Ok, S::Error> {
        v.as_deref().map(|p| Out(p.as_os_str())).serialize(s)
    }

    /// Reads null, a string or an array of bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
        Ok(Option::<In>::deserialize(d)?.map(|i| PathBuf::from(i.0)))
    }
}

/// A `Vec<OsString>`: an argv.
pub mod strings {
    use super::*;

    /// Writes each as [`string`] does.
    pub fn serialize<S: Serializer>(v: &[OsString], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|x| Out(x)))
    }

    /// Reads an array of strings or byte arrays.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<OsString>, D::Error> {
        Ok(Vec::<In>::deserialize(d)?
            .into_iter()
            .map(|i| i.0)
            .collect())
    }
}

/// A `Vec<(OsString, OsString)>`: environment variables.
pub mod pairs {
    use super::*;

    /// Writes each pair as a two-element array.
    pub fn serialize<S: Serializer>(v: &[(OsString, OsString)], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|(k, x)| (Out(k), Out(x))))
    }

    /// Reads an array of two-element arrays.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(OsString, OsString)>, D::Error> {
        Ok(Vec::<(In, In)>::deserialize(d)?
            .into_iter()
            .map(|(k, v)| (k.0, v.0))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct All {
        #[serde(with = "string")]
        one: OsString,
        #[serde(with = "opt_path", default)]
        dir: Option<PathBuf>,
        #[serde(with = "pairs")]
        env: Vec<(OsString, OsString)>,
    }

    #[test]
    fn any_bytes_round_trip_and_utf8_stays_readable() {
        let bad = || OsString::from_vec(vec![0xff, b'a', 0x80]);
        let all = All {
            one: bad(),
            dir: Some(PathBuf::from(bad())),
            env: vec![("A".into(), "1".into()), (bad(), bad())],
        };
        let json = serde_json::to_value(&all).expect("ser");
        assert_eq!(json["env"][0], serde_json::json!(["A", "1"]));
        assert_eq!(json["one"], serde_json::json!([255, 97, 128]));
        let back: All = serde_json::from_value(json).expect("de");
        assert_eq!(back, all);
        let none: All = serde_json::from_str(r#"{"one":"x","env":[]}"#).expect("no dir");
        assert_eq!(none.dir, None);
    }
}
