//! Script values as JSON and as text.

use std::any::Any;

use rhai::{Array, Blob, Dynamic, ImmutableString, Map};
use serde_json::{Number, Value};

/// Deeper than this, a (cyclic, shared) structure renders as `"…"`.
const MAX_DEPTH: usize = 128;

/// A script value as JSON: unit is null, integers, floats (NaN and the
/// infinities become null), strings, characters, bools, arrays, maps
/// (objects) and blobs (arrays of bytes) map naturally; anything else
/// becomes its display string.
pub fn to_json(value: &Dynamic) -> Value {
    to_json_at(value, 0)
}

fn to_json_at(v: &Dynamic, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::String("…".into());
    }
    if v.is_shared() {
        return to_json_at(&v.flatten_clone(), depth + 1);
    }
    if v.is_unit() {
        return Value::Null;
    }
    if let Ok(b) = v.as_bool() {
        return Value::Bool(b);
    }
    if let Ok(i) = v.as_int() {
        return Value::Number(i.into());
    }
    if let Ok(f) = v.as_float() {
        return Number::from_f64(f).map_or(Value::Null, Value::Number);
    }
    if let Ok(c) = v.as_char() {
        return Value::String(c.to_string());
    }
    if let Some(s) = v.read_lock::<ImmutableString>() {
        return Value::String(s.to_string());
    }
    if let Some(a) = v.read_lock::<Array>() {
        return Value::Array(a.iter().map(|x| to_json_at(x, depth + 1)).collect());
    }
    if let Some(m) = v.read_lock::<Map>() {
        return Value::Object(
            m.iter()
                .map(|(k, x)| (k.to_string(), to_json_at(x, depth + 1)))
                .collect(),
        );
    }
    if let Some(b) = v.read_lock::<Blob>() {
        return Value::Array(b.iter().map(|&x| x.into()).collect());
    }
    Value::String(v.to_string())
}

/// A script value as a line of text: a string or character as it is, unit
/// as nothing, anything else as compact JSON.
pub fn to_text(value: &Dynamic) -> String {
    if let Some(s) = value.read_lock::<ImmutableString>() {
        return s.to_string();
    }
    match to_json(value) {
        Value::String(s) => s,
        Value::Null if value.is_unit() => String::new(),
        other => other.to_string(),
    }
}

/// Renders a live output value of a thread job (a `rhai::Dynamic`) as JSON:
/// the [`jobs_core::RenderFn`] of script values.
pub fn render_live(value: &(dyn Any + Send + Sync)) -> Value {
    match value.downcast_ref::<Dynamic>() {
        Some(d) => to_json(d),
        None => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_become_json_naturally() {
        let engine = rhai::Engine::new_raw();
        let v: Dynamic = engine
            .eval(r#"#{ "n": 1, "f": 1.5, "s": "x", "b": true, "a": [1, "two", ()], "c": 'c' }"#)
            .expect("eval");
        assert_eq!(
            to_json(&v),
            json!({"n": 1, "f": 1.5, "s": "x", "b": true, "a": [1, "two", null], "c": "c"})
        );
        assert_eq!(to_json(&Dynamic::from(f64::NAN)), Value::Null);
    }

    #[test]
    fn text_is_plain_for_scalars_and_json_for_structures() {
        assert_eq!(to_text(&Dynamic::from("hi")), "hi");
        assert_eq!(to_text(&Dynamic::from(42_i64)), "42");
        assert_eq!(to_text(&Dynamic::UNIT), "");
        let arr: Dynamic = vec![Dynamic::from(1_i64), Dynamic::from("a")].into();
        assert_eq!(to_text(&arr), r#"[1,"a"]"#);
    }

    #[test]
    fn render_live_reads_a_dynamic() {
        let d = Dynamic::from(7_i64);
        assert_eq!(render_live(&d), json!(7));
        assert_eq!(render_live(&5u8), Value::Null);
    }
}
