//! Durations as people write them in flags and annotations: `90`, `90s`, `15m`, `2h`.

use std::time::Duration;

/// Parses `90`, `90s`, `15m` or `2h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let amount: u64 =
        digits.parse().map_err(|_| format!("'{text}' is not a duration such as 30s, 10m or 1h"))?;
    let unit_seconds: u64 = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("'{text}' has an unknown unit; use s, m or h")),
    };
    let seconds = amount.checked_mul(unit_seconds).ok_or_else(|| format!("'{text}' is too long"))?;
    if seconds == 0 {
        return Err("the duration must be more than zero".to_owned());
    }
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_seconds_minutes_and_hours() {
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
    }

    #[test]
    fn bad_durations_are_refused_with_a_hint() {
        assert!(parse_duration("soon").unwrap_err().contains("30s, 10m or 1h"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("18446744073709551615h").unwrap_err().contains("too long"));
    }
}
