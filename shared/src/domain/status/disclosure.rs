//! `/.well-known/security.txt` (RFC 9116): where and how to report a vulnerability, the
//! security page's "Security disclosures" promise, served by the status function from the
//! deployment's configuration (`LATCHKEY_SECURITY_*`, `LATCHKEY_PUBLIC_URL`; template
//! parameters on AWS). Nothing is served until a contact and an expiry are configured: RFC 9116
//! requires both.
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The fields of the file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityTxt {
    /// `mailto:`, `https://` or `tel:` URIs, most preferred first.
    pub contacts: Vec<String>,
    pub expires: OffsetDateTime,
    /// The disclosure policy's `https://` URL.
    pub policy: Option<String>,
    /// Where this file is served: `<public URL>/.well-known/security.txt`.
    pub canonical: Option<String>,
    /// Language tags, comma-separated (RFC 9116 §2.5.8).
    pub languages: String,
}

/// Which setting is wrong, and why (never its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingError {
    pub var: &'static str,
    pub problem: &'static str,
}

const fn refuse(var: &'static str, problem: &'static str) -> SettingError {
    SettingError { var, problem }
}

impl SecurityTxt {
    /// The file from its settings: comma-separated contacts, an RFC 3339 expiry, and the
    /// optional policy URL, public base URL and languages.
    pub fn from_settings(
        contacts: &str,
        expires: &str,
        policy: Option<&str>,
        public_url: Option<&str>,
        languages: Option<&str>,
    ) -> Result<Self, SettingError> {
        const CONTACT: &str = "LATCHKEY_SECURITY_CONTACT";
        let contacts = comma_separated(contacts);
        if contacts.is_empty() {
            return Err(refuse(CONTACT, "must list at least one contact"));
        }
        for c in &contacts {
            let ok = match c.split_once(':') {
                Some(("mailto", rest)) => rest.contains('@') && !rest.contains(char::is_whitespace),
                Some(("tel", rest)) => !rest.is_empty() && !rest.contains(char::is_whitespace),
                Some(("https", _)) => https_url(c),
                _ => false,
            };
            if !ok {
                return Err(refuse(CONTACT, "must be mailto:, tel: or https:// URIs"));
            }
        }
        let expires = OffsetDateTime::parse(expires, &Rfc3339)
            .map_err(|_| refuse("LATCHKEY_SECURITY_EXPIRES", "must be an RFC 3339 date-time"))?;
        if let Some(p) = policy
            && !https_url(p)
        {
            return Err(refuse(
                "LATCHKEY_SECURITY_POLICY",
                "must be an https:// URL",
            ));
        }
        let canonical = match public_url {
            None => None,
            Some(base) => Some(format!(
                "{}/.well-known/security.txt",
                public_base(base)
                    .ok_or(refuse("LATCHKEY_PUBLIC_URL", "must be an https:// origin"))?
            )),
        };
        let languages = languages.unwrap_or("en").to_owned();
        let tag = |t: &str| {
            !t.is_empty()
                && t.len() <= 35
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if languages.contains(char::is_control) || !languages.split(',').map(str::trim).all(tag) {
            return Err(refuse(
                "LATCHKEY_SECURITY_LANGUAGES",
                "must be comma-separated language tags",
            ));
        }
        Ok(Self {
            contacts,
            expires,
            policy: policy.map(str::to_owned),
            canonical,
            languages,
        })
    }

    /// The file's text: one field per line, CRLF-free, UTF-8 (RFC 9116 §2.2).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for c in &self.contacts {
            out.push_str(&format!("Contact: {c}\n"));
        }
        let expires = self
            .expires
            .to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default();
        out.push_str(&format!("Expires: {expires}\n"));
        if let Some(p) = &self.policy {
            out.push_str(&format!("Policy: {p}\n"));
        }
        if let Some(c) = &self.canonical {
            out.push_str(&format!("Canonical: {c}\n"));
        }
        out.push_str(&format!("Preferred-Languages: {}\n", self.languages));
        out
    }
}

/// The non-empty, trimmed items of a comma-separated setting (contacts here, the development
/// origins in `config`).
pub fn comma_separated(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn https_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()))
        && !text.contains(char::is_whitespace)
}

/// The deployment's public base URL as an origin (`https://auth.example.com`, or
/// `http://localhost[:port]` for a laptop), without a trailing slash.
pub fn public_base(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let local = url.scheme() == "http" && url.host_str() == Some("localhost");
    if !(url.scheme() == "https" || local) || url.path() != "/" && !url.path().is_empty() {
        return None;
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_the_rfc_9116_fields_from_settings() {
        let txt = SecurityTxt::from_settings(
            "mailto:security@example.com, https://example.com/report",
            "2027-06-01T00:00:00Z",
            Some("https://example.com/disclosure"),
            Some("https://auth.example.com/"),
            None,
        )
        .unwrap();
        assert_eq!(
            txt.render(),
            "Contact: mailto:security@example.com\n\
             Contact: https://example.com/report\n\
             Expires: 2027-06-01T00:00:00Z\n\
             Policy: https://example.com/disclosure\n\
             Canonical: https://auth.example.com/.well-known/security.txt\n\
             Preferred-Languages: en\n"
        );
    }

    #[test]
    fn bad_settings_name_the_variable() {
        let at = |c: &str, e: &str, p: Option<&str>, u: Option<&str>, l: Option<&str>| {
            SecurityTxt::from_settings(c, e, p, u, l).unwrap_err().var
        };
        let e = "2027-06-01T00:00:00Z";
        assert_eq!(at("", e, None, None, None), "LATCHKEY_SECURITY_CONTACT");
        assert_eq!(
            at("security@example.com", e, None, None, None),
            "LATCHKEY_SECURITY_CONTACT"
        );
        assert_eq!(
            at("http://example.com/r", e, None, None, None),
            "LATCHKEY_SECURITY_CONTACT"
        );
        assert_eq!(
            at("javascript:alert(1)", e, None, None, None),
            "LATCHKEY_SECURITY_CONTACT"
        );
        let c = "mailto:s@example.com";
        assert_eq!(
            at(c, "next year", None, None, None),
            "LATCHKEY_SECURITY_EXPIRES"
        );
        assert_eq!(
            at(c, e, Some("http://x.example"), None, None),
            "LATCHKEY_SECURITY_POLICY"
        );
        assert_eq!(
            at(c, e, None, Some("https://a.example/path"), None),
            "LATCHKEY_PUBLIC_URL"
        );
        assert_eq!(
            at(c, e, None, Some("http://a.example"), None),
            "LATCHKEY_PUBLIC_URL"
        );
        assert_eq!(
            at(c, e, None, None, Some("en,\nx")),
            "LATCHKEY_SECURITY_LANGUAGES"
        );
        assert_eq!(
            public_base("http://localhost:8787").as_deref(),
            Some("http://localhost:8787")
        );
    }
}
