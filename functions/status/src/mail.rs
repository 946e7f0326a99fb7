//! How an urgent data-impact notice reads. The domain decides who gets one and when
//! (`latchkey::domain::status::notices`); this writes the words, the HTML escaped by maud.
use latchkey::domain::status::notices::{NoticeComposer, NoticeFacts};
use latchkey::domain::status::views::iso;
use latchkey::domain::tenants::AdminContact;
use latchkey::ports::mailer::Email;
use maud::html;

/// The notice every contact of an affected tenant receives.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoticeMail;

/// Header-safe: one line, no control characters.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl NoticeComposer for NoticeMail {
    fn compose(&self, f: &NoticeFacts<'_>, to: &AdminContact) -> Email {
        let i = f.incident;
        let u = f.update;
        let link = format!("{}#incident-{}", f.page_url, i.id);
        let tenant = if f.tenant_name.is_empty() {
            f.tenant_id
        } else {
            f.tenant_name
        };
        let first = u.seq == 1
            || !i
                .updates
                .iter()
                .any(|p| p.seq < u.seq && p.data_impact_tenants.iter().any(|t| t == f.tenant_id));
        let subject = one_line(&format!(
            "[Urgent] {}: an incident affects your data ({})",
            if first { "Security notice" } else { "Update" },
            i.name
        ));
        let when = iso(u.display_at);
        let text = format!(
            "Hello {name},\n\n\
             An incident affects customer data of your Latchkey tenant \"{tenant}\" \
             ({tenant_id}). You are receiving this as one of its admin contacts.\n\n\
             Incident: {title}\n\
             Status:   {status} (update {seq}, {when})\n\
             Impact:   {impact}\n\n\
             {body}\n\n\
             Follow the incident, and every update to it, on our status page:\n{link}\n\n\
             We will write to you again on each update that concerns your data.\n",
            name = to.first_name,
            tenant_id = f.tenant_id,
            title = i.name,
            status = u.status.label(),
            seq = u.seq,
            impact = i.impact.as_str(),
            body = u.body,
        );
        let html = html! {
            p { "Hello " (to.first_name) "," }
            p {
                strong { "An incident affects customer data of your Latchkey tenant “" (tenant) "” (" (f.tenant_id) ")." }
                " You are receiving this as one of its admin contacts."
            }
            table {
                tr { th align="left" { "Incident" } td { (i.name) } }
                tr { th align="left" { "Status" } td { (u.status.label()) " (update " (u.seq) ", " (when) ")" } }
                tr { th align="left" { "Impact" } td { (i.impact.as_str()) } }
            }
            p style="white-space: pre-wrap" { (u.body) }
            p { "Follow the incident on our status page: " a href=(link) { (link) } }
            p { "We will write to you again on each update that concerns your data." }
        };
        Email {
            to: to.email.clone(),
            subject,
            text,
            html: html.into_string(),
            urgent: true,
        }
    }
}
