//! The Atom feed (RFC 4287) of incidents and maintenances, as Statuspage publishes it: one
//! entry per incident, updated whenever it is, its content the timeline newest first. Written
//! by `atom_syndication`; the HTML inside each entry is escaped by maud, then by the XML writer.
use atom_syndication::{Content, Entry, Feed, FixedDateTime, Link, Person, Text};
use latchkey::domain::status::views::{PageInfo, iso};
use latchkey::domain::status::{Incident, Kind, Snapshot};
use maud::html;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

fn stamp(t: OffsetDateTime) -> Result<FixedDateTime, String> {
    let text = t.format(&Rfc3339).map_err(|e| e.to_string())?;
    FixedDateTime::parse_from_rfc3339(&text).map_err(|e| e.to_string())
}

fn link(href: String, rel: &str, mime: &str) -> Link {
    Link {
        href,
        rel: rel.into(),
        mime_type: Some(mime.into()),
        ..Link::default()
    }
}

fn content(i: &Incident) -> String {
    html! {
        @if i.kind == Kind::Maintenance {
            @if let (Some(from), Some(until)) = (i.scheduled_for, i.scheduled_until) {
                p { "Scheduled from " (iso(from)) " until " (iso(until)) }
            }
        }
        @for u in i.updates.iter().rev() {
            p {
                small { (iso(u.display_at)) }
                br;
                strong { (u.status.label()) }
                " - " (u.body)
            }
        }
    }
    .into_string()
}

/// The feed document.
pub fn render(s: &Snapshot, info: &PageInfo) -> Result<Vec<u8>, String> {
    let mut entries = Vec::new();
    let mut listed: Vec<&Incident> = s.recent_incidents().chain(s.maintenances()).collect();
    listed.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
    for i in listed {
        let shortlink = format!("{}#incident-{}", info.url, i.id);
        entries.push(Entry {
            id: format!("{}/incidents/{}", info.url, i.id),
            title: Text::plain(i.name.clone()),
            updated: stamp(i.updated_at)?,
            published: Some(stamp(i.created_at)?),
            links: vec![link(shortlink, "alternate", "text/html")],
            content: Some(Content {
                value: Some(content(i)),
                content_type: Some("html".into()),
                ..Content::default()
            }),
            ..Entry::default()
        });
    }
    let feed = Feed {
        id: info.url.clone(),
        title: Text::plain(format!("{} status", info.name)),
        updated: stamp(s.updated_at.unwrap_or(s.now))?,
        authors: vec![Person {
            name: info.name.clone(),
            ..Person::default()
        }],
        links: vec![
            link(info.url.clone(), "alternate", "text/html"),
            link(
                format!("{}/feed.atom", info.url),
                "self",
                "application/atom+xml",
            ),
        ],
        entries,
        ..Feed::default()
    };
    feed.write_to(Vec::new()).map_err(|e| e.to_string())
}
