//! The status page as HTML: server-rendered by maud (every value escaped), no JavaScript, no
//! external assets, one inline stylesheet allowed by its hash in the Content-Security-Policy,
//! readable on a phone (viewport meta, one fluid column).
//!
//! It shows the overall status, active incidents with their timelines, maintenance in
//! progress and upcoming, the components, and 90 days of history: a bar of days coloured by
//! the worst impact of that day, then the past incidents by day.
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use latchkey::domain::status::views::{PageInfo, iso};
use latchkey::domain::status::{Component, HISTORY_DAYS, Incident, Indicator, Kind, Snapshot};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime, Time};

const CSS: &str = r#"
:root{--ok:#1f883d;--minor:#bf8700;--major:#d4630b;--critical:#cf222e;--maint:#0969da;--mute:#59636e;--line:#d1d9e0}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2328;background:#f6f8fa}
header,main,footer{max-width:48rem;margin:0 auto;padding:0 1rem}
header h1{font-size:1.5rem;margin:1.5rem 0 1rem}
section{margin:0 0 1.5rem}
h2{font-size:1.15rem;margin:0 0 .5rem}
h3{font-size:1.05rem;margin:0}
.card{background:#fff;border:1px solid var(--line);border-radius:8px;padding:1rem;margin:0 0 .75rem}
.overall{color:#fff;border-radius:8px;padding:1rem 1.25rem;font-size:1.25rem;font-weight:600}
.ind-none{background:var(--ok)}.ind-minor{background:var(--minor)}.ind-major{background:var(--major)}.ind-critical{background:var(--critical)}.ind-maintenance{background:var(--maint)}
.impact-none,.impact-minor{border-left:6px solid var(--minor)}.impact-major{border-left:6px solid var(--major)}.impact-critical{border-left:6px solid var(--critical)}.impact-maintenance{border-left:6px solid var(--maint)}
.meta{color:var(--mute);font-size:.875rem;margin:.25rem 0 .5rem}
ol.timeline{list-style:none;margin:0;padding:0}
ol.timeline li{border-top:1px solid var(--line);padding:.5rem 0}
ol.timeline p{margin:.25rem 0 0;white-space:pre-wrap;overflow-wrap:anywhere}
ul.components{list-style:none;margin:0;padding:0}
ul.components li{display:flex;justify-content:space-between;gap:1rem;padding:.5rem 0;border-top:1px solid var(--line)}
ul.components li:first-child{border-top:0}
ul.components ul{list-style:none;padding-left:1rem;margin:0;flex-basis:100%}
li.group{flex-wrap:wrap}
.st-operational{color:var(--ok)}.st-degraded_performance{color:var(--minor)}.st-partial_outage{color:var(--major)}.st-major_outage{color:var(--critical)}.st-under_maintenance{color:var(--maint)}
.bar{display:flex;gap:1px;height:2.25rem;margin:.5rem 0 .25rem}
.bar span{flex:1;border-radius:2px;background:var(--ok)}
.bar .d-minor{background:var(--minor)}.bar .d-major{background:var(--major)}.bar .d-critical{background:var(--critical)}.bar .d-maintenance{background:var(--maint)}
.axis{display:flex;justify-content:space-between;color:var(--mute);font-size:.8rem}
.day h3{font-size:1rem;border-bottom:1px solid var(--line);padding-bottom:.25rem;margin:1rem 0 .5rem}
footer{color:var(--mute);font-size:.875rem;padding-bottom:2rem}
a{color:var(--maint)}
"#;

/// The page's CSP: nothing may load or run but the one stylesheet above.
pub fn content_security_policy() -> String {
    let hash = STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'none'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

fn when(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!(
        "[day padding:none] [month repr:short] [year], [hour]:[minute] UTC"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(&f)
        .unwrap_or_default()
}

fn day_label(t: OffsetDateTime) -> String {
    let f = time::macros::format_description!("[day padding:none] [month repr:short] [year]");
    t.format(&f).unwrap_or_default()
}

fn timeline(i: &Incident) -> Markup {
    html! {
        ol.timeline {
            @for u in i.updates.iter().rev() {
                li {
                    strong { (u.status.label()) }
                    " — "
                    time datetime=(iso(u.display_at)) { (when(u.display_at)) }
                    p { (u.body) }
                }
            }
        }
    }
}

fn incident_card(i: &Incident) -> Markup {
    html! {
        article class=(format!("card impact-{}", i.impact.as_str())) id=(format!("incident-{}", i.id)) {
            h3 { (i.name) }
            p.meta {
                @if i.kind == Kind::Maintenance {
                    "Scheduled "
                    @if let (Some(from), Some(until)) = (i.scheduled_for, i.scheduled_until) {
                        (when(from)) " – " (when(until))
                    }
                    " · " (i.status.label())
                } @else {
                    "Impact: " (i.impact.as_str()) " · " (i.status.label())
                }
            }
            (timeline(i))
        }
    }
}

fn component_row(s: &Snapshot, c: &Component) -> Markup {
    let st = s.effective_status(c);
    html! {
        li.group[c.group] {
            span { (c.name) }
            span class=(format!("st-{}", st.as_str())) { (st.label()) }
            @if c.group {
                ul {
                    @for child in s.children(&c.id) {
                        li {
                            span { (child.name) }
                            span class=(format!("st-{}", child.status.as_str())) { (child.status.label()) }
                        }
                    }
                }
            }
        }
    }
}

/// The worst thing of each of the last [`HISTORY_DAYS`] days (UTC), oldest first.
fn days(s: &Snapshot) -> Vec<(OffsetDateTime, &'static str, Vec<&Incident>)> {
    let today = s.now.replace_time(Time::MIDNIGHT);
    (0..HISTORY_DAYS)
        .rev()
        .map(|back| {
            let start = today - Duration::days(back);
            let end = start + Duration::days(1);
            let hits: Vec<&Incident> = s
                .incidents
                .iter()
                .filter(|i| {
                    let (from, until) = i.span(s.now);
                    i.status != latchkey::domain::status::IncidentStatus::Scheduled
                        && from < end
                        && until >= start
                })
                .collect();
            let worst = hits
                .iter()
                .filter(|i| i.kind == Kind::Incident)
                .map(|i| i.impact.indicator())
                .max();
            let class = match worst {
                Some(Indicator::Critical) => "d-critical",
                Some(Indicator::Major) => "d-major",
                Some(Indicator::Minor) | Some(Indicator::None) => "d-minor",
                None if !hits.is_empty() => "d-maintenance",
                None => "d-ok",
            };
            (start, class, hits)
        })
        .collect()
}

pub fn render(s: &Snapshot, info: &PageInfo) -> String {
    let indicator = s.indicator();
    let description = s.description();
    let overall = if indicator == Indicator::None && description != "All Systems Operational" {
        "ind-maintenance".to_owned()
    } else {
        format!("ind-{}", indicator.as_str())
    };
    let active: Vec<&Incident> = s.unresolved_incidents().collect();
    let in_progress: Vec<&Incident> = s.active_maintenances().collect();
    let upcoming = s.upcoming_maintenances();
    let top: Vec<&Component> = s
        .components
        .iter()
        .filter(|c| c.group_id.is_none())
        .collect();
    let history = days(s);
    let horizon = s.now - Duration::days(HISTORY_DAYS);
    let mut past: Vec<&Incident> = s
        .incidents
        .iter()
        .filter(|i| i.status.is_closed() && i.span(s.now).1 >= horizon)
        .collect();
    past.sort_by_key(|i| std::cmp::Reverse(i.started_at));
    let mut by_day: Vec<(String, Vec<&Incident>)> = Vec::new();
    for i in past {
        let label = day_label(i.started_at);
        match by_day.last_mut() {
            Some((d, list)) if *d == label => list.push(i),
            _ => by_day.push((label, vec![i])),
        }
    }
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (info.name) " status" }
                link rel="alternate" type="application/atom+xml" title=(format!("{} status", info.name)) href="/status/feed.atom";
                style { (PreEscaped(CSS)) }
            }
            body {
                header { h1 { (info.name) " status" } }
                main {
                    section #overall {
                        p class=(format!("overall {overall}")) { (description) }
                    }
                    @if !active.is_empty() {
                        section #active-incidents {
                            h2 { "Active incidents" }
                            @for i in &active { (incident_card(i)) }
                        }
                    }
                    @if !in_progress.is_empty() {
                        section #maintenance-in-progress {
                            h2 { "Maintenance in progress" }
                            @for i in &in_progress { (incident_card(i)) }
                        }
                    }
                    @if !upcoming.is_empty() {
                        section #upcoming-maintenance {
                            h2 { "Upcoming maintenance" }
                            @for i in &upcoming { (incident_card(i)) }
                        }
                    }
                    section #components {
                        h2 { "Components" }
                        div.card {
                            @if top.is_empty() {
                                p { "No components are listed yet." }
                            } @else {
                                ul.components {
                                    @for c in &top { (component_row(s, c)) }
                                }
                            }
                        }
                    }
                    section #history {
                        h2 { "Past " (HISTORY_DAYS) " days" }
                        div.card {
                            div.bar role="img" aria-label=(format!("Incidents per day over the past {HISTORY_DAYS} days")) {
                                @for (day, class, hits) in &history {
                                    span class=(class) title=(format!("{}: {}", day_label(*day), if hits.is_empty() { "no incidents".to_owned() } else { hits.iter().map(|i| i.name.as_str()).collect::<Vec<_>>().join("; ") })) {}
                                }
                            }
                            div.axis { span { (HISTORY_DAYS) " days ago" } span { "Today" } }
                        }
                        @if by_day.is_empty() {
                            p { "No resolved incidents in the past " (HISTORY_DAYS) " days." }
                        }
                        @for (day, list) in &by_day {
                            div.day {
                                h3 { (day) }
                                @for i in list { (incident_card(i)) }
                            }
                        }
                    }
                }
                footer {
                    p {
                        "Subscribe: " a href="/status/feed.atom" { "Atom feed" }
                        " · API: " a href="/status/api/v2/summary.json" { "summary.json" }
                    }
                    @if let Some(t) = s.updated_at {
                        p { "Last updated " time datetime=(iso(t)) { (when(t)) } }
                    }
                }
            }
        }
    };
    markup.into_string()
}
