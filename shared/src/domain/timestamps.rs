//! The timestamp formats of stored items and wire fields, in one place: RFC 3339 (what
//! Authsignal's API and our items carry), and ISO 8601 with milliseconds and a numeric offset
//! (what Statuspage's API carries).
use crate::domain::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Formatting a timestamp the domain holds; it fails only for years outside 0–9999.
pub trait Timestamp {
    /// RFC 3339, e.g. `2026-11-29T12:00:00Z`.
    fn rfc3339(&self) -> Result<String, Error>;
    /// ISO 8601 with milliseconds and a numeric offset, e.g. `2026-11-29T12:00:00.000+00:00`.
    fn iso_millis(&self) -> String;
}

impl Timestamp for OffsetDateTime {
    fn rfc3339(&self) -> Result<String, Error> {
        self.format(&Rfc3339)
            .map_err(|e| Error::Internal(format!("timestamp: {e}")))
    }

    fn iso_millis(&self) -> String {
        let format = time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
        );
        self.format(&format).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_both_ways() {
        let t = datetime!(2026-11-29 12:00:01.5 UTC);
        assert_eq!(t.rfc3339().unwrap(), "2026-11-29T12:00:01.5Z");
        assert_eq!(t.iso_millis(), "2026-11-29T12:00:01.500+00:00");
    }
}
