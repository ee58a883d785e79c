//! Durations as users write them (`90`, `90s`, `5m`, `1h30m`, `500ms`) and
//! as jobctl prints them (`1m30s`).

use std::fmt;
use std::time::Duration;

/// Why a duration could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseDurationError {
    input: String,
    why: &'static str,
}

impl fmt::Display for ParseDurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid duration {:?}: {} (e.g. 90, 90s, 5m, 1h30m, 500ms)",
            self.input, self.why
        )
    }
}

impl std::error::Error for ParseDurationError {}

/// Reads a duration: one or more `NUMBER UNIT` parts, the units `ms`, `s`,
/// `m`, `h` and `d`; a lone number is seconds. Zero is refused: no job can
/// run for no time.
pub fn parse_duration(input: &str) -> Result<Duration, ParseDurationError> {
    let err = |why| ParseDurationError {
        input: input.to_string(),
        why,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if let Ok(secs) = s.parse::<u64>() {
        return match secs {
            0 => Err(err("must be more than zero")),
            n => Ok(Duration::from_secs(n)),
        };
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(err("expected a number"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| err("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let part = match &rest[..unit_len] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86400)),
            "" => return Err(err("a unit is missing")),
            _ => return Err(err("unknown unit")),
        };
        total = total.saturating_add(part);
        rest = &rest[unit_len..];
    }
    if total.is_zero() {
        return Err(err("must be more than zero"));
    }
    Ok(total)
}

/// Prints a duration normalized: `1h30m`, `90s` becomes `1m30s`, `500ms`,
/// `1s500ms`; zero is `0s`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let parts = [
        (86_400_000u128, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    let mut left = ms;
    for (size, unit) in parts {
        let n = left / size;
        if n > 0 {
            out.push_str(&format!("{n}{unit}"));
            left -= n * size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_prints() {
        for (s, ms, shown) in [
            ("90", 90_000, "1m30s"),
            ("90s", 90_000, "1m30s"),
            ("5m", 300_000, "5m"),
            ("1h30m", 5_400_000, "1h30m"),
            ("500ms", 500, "500ms"),
            ("1s500ms", 1_500, "1s500ms"),
        ] {
            let d = parse_duration(s).expect(s);
            assert_eq!(d, Duration::from_millis(ms), "{s}");
            assert_eq!(format_duration(d), shown, "{s}");
        }
        for bad in ["", "0", "0s", "abc", "5x", "m5", "1.5s", "-1s", "10 s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
