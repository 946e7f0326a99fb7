//! Action configuration and the rules engine: a default outcome, and rules (priority 0–99,
//! lowest first) whose conditions must all hold. The outcome is that of the first matching rule,
//! or the default; every matching rule's id is reported.
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Allow,
    /// The secure default: step up unless a rule says otherwise.
    #[default]
    Challenge,
    Review,
    Block,
}

impl Outcome {
    /// The action state an outcome starts in.
    pub fn state(self) -> &'static str {
        match self {
            Outcome::Allow => "ALLOW",
            Outcome::Challenge => "CHALLENGE_REQUIRED",
            Outcome::Review => "REVIEW_REQUIRED",
            Outcome::Block => "BLOCK",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ActionConfig {
    #[serde(default)]
    pub default_outcome: Outcome,
    #[serde(default)]
    pub rules: Vec<Rule>,
}

impl ActionConfig {
    /// Whether any rule looks at the user's earlier actions of this code: only then does
    /// track read them (a query per track otherwise spent for nothing).
    pub fn counts_earlier_actions(&self) -> bool {
        self.any_condition(|c| matches!(c, RuleCondition::ActionCountExceeds { .. }))
    }

    /// Whether any rule asks if the device is new: only then does track read the device's
    /// record.
    pub fn asks_new_device(&self) -> bool {
        self.any_condition(|c| matches!(c, RuleCondition::NewDevice { .. }))
    }

    fn any_condition(&self, f: impl Fn(&RuleCondition) -> bool) -> bool {
        self.rules.iter().flat_map(|r| &r.conditions).any(f)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub priority: u8,
    pub outcome: Outcome,
    /// All must hold for the rule to match; an empty list always matches.
    #[serde(default)]
    pub conditions: Vec<RuleCondition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RuleCondition {
    /// The track's `ipAddress` is inside one of these networks.
    IpInCidr {
        cidrs: Vec<String>,
    },
    /// `custom[field]` equals `equals`.
    Custom {
        field: String,
        equals: Value,
    },
    /// The user agent contains `text` (case-insensitive).
    UserAgentContains {
        text: String,
    },
    IsEnrolled {
        value: bool,
    },
    /// The track's `deviceId` has (true) or has not (false) been seen for this user before.
    NewDevice {
        value: bool,
    },
    /// More than `count` actions with this code for this user in the last `window_seconds`
    /// (this one included).
    ActionCountExceeds {
        count: u32,
        window_seconds: u32,
    },
}

/// What the rules look at, gathered by track.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub custom: Map<String, Value>,
    pub enrolled: bool,
    pub new_device: bool,
    pub now: i64,
    /// Creation times (epoch seconds) of this user's earlier actions with this code.
    pub earlier_actions: Vec<i64>,
}

impl ActionConfig {
    /// Checks what evaluation relies on: priorities 0–99, unique ids, parseable networks.
    pub fn validate(&self) -> Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for rule in &self.rules {
            if rule.priority > 99 {
                return Err(format!("rule {}: priority must be 0-99", rule.id));
            }
            if rule.id.is_empty() || !ids.insert(rule.id.as_str()) {
                return Err(format!(
                    "rule ids must be unique and non-empty ({})",
                    rule.id
                ));
            }
            for c in &rule.conditions {
                if let RuleCondition::IpInCidr { cidrs } = c {
                    for cidr in cidrs {
                        parse_net(cidr)
                            .ok_or_else(|| format!("rule {}: bad network {cidr}", rule.id))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The outcome and the ids of every matching rule, in priority order.
    pub fn evaluate(&self, facts: &Facts) -> (Outcome, Vec<String>) {
        let mut rules: Vec<&Rule> = self.rules.iter().collect();
        rules.sort_by_key(|r| (r.priority, r.id.clone()));
        let matched: Vec<&Rule> = rules
            .into_iter()
            .filter(|r| r.conditions.iter().all(|c| holds(c, facts)))
            .collect();
        let outcome = matched.first().map_or(self.default_outcome, |r| r.outcome);
        (outcome, matched.iter().map(|r| r.id.clone()).collect())
    }
}

/// A rule's network in canonical form: an IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is
/// the IPv4 network it maps (`10.0.0.0/8`), so it matches what [`canonical_ip`] gives.
fn parse_net(s: &str) -> Option<ipnet::IpNet> {
    let net = s
        .parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(ipnet::IpNet::from))?;
    Some(match net {
        ipnet::IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => ipnet::IpNet::V4(ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96).ok()?),
            None => net,
        },
        _ => net,
    })
}

/// One form per address: an IPv4-mapped IPv6 address (`::ffff:203.0.113.9`, how dual-stack
/// servers report IPv4 clients) is the IPv4 address it maps.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

fn holds(condition: &RuleCondition, facts: &Facts) -> bool {
    match condition {
        RuleCondition::IpInCidr { cidrs } => facts.ip.map(canonical_ip).is_some_and(|ip| {
            cidrs
                .iter()
                .filter_map(|c| parse_net(c))
                .any(|net| net.contains(&ip))
        }),
        RuleCondition::Custom { field, equals } => facts.custom.get(field) == Some(equals),
        RuleCondition::UserAgentContains { text } => facts
            .user_agent
            .as_ref()
            .is_some_and(|ua| ua.to_ascii_lowercase().contains(&text.to_ascii_lowercase())),
        RuleCondition::IsEnrolled { value } => facts.enrolled == *value,
        RuleCondition::NewDevice { value } => facts.new_device == *value,
        RuleCondition::ActionCountExceeds {
            count,
            window_seconds,
        } => {
            let since = facts.now - i64::from(*window_seconds);
            let recent = facts.earlier_actions.iter().filter(|t| **t > since).count() + 1;
            recent > *count as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> ActionConfig {
        serde_json::from_value(json!({
            "defaultOutcome": "ALLOW",
            "rules": [
                {"id": "office", "name": "Office network", "priority": 10, "outcome": "ALLOW",
                 "conditions": [{"type": "ipInCidr", "cidrs": ["10.0.0.0/8", "192.0.2.7"]}]},
                {"id": "new-device", "name": "New device", "priority": 20, "outcome": "CHALLENGE",
                 "conditions": [{"type": "newDevice", "value": true}]},
                {"id": "bot", "name": "Bot", "priority": 5, "outcome": "BLOCK",
                 "conditions": [{"type": "userAgentContains", "text": "curl"}]},
                {"id": "vip", "name": "VIP", "priority": 30, "outcome": "REVIEW",
                 "conditions": [{"type": "custom", "field": "tier", "equals": "vip"},
                                {"type": "isEnrolled", "value": false}]},
                {"id": "burst", "name": "Burst", "priority": 1, "outcome": "BLOCK",
                 "conditions": [{"type": "actionCountExceeds", "count": 3, "windowSeconds": 60}]}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn the_lowest_priority_match_decides_and_all_matches_are_reported() {
        let c = config();
        c.validate().unwrap();
        let mut f = Facts {
            now: 1000,
            ..Facts::default()
        };
        assert_eq!(c.evaluate(&f), (Outcome::Allow, vec![]));
        f.new_device = true;
        assert_eq!(
            c.evaluate(&f),
            (Outcome::Challenge, vec!["new-device".into()])
        );
        f.ip = Some("10.1.2.3".parse().unwrap());
        assert_eq!(
            c.evaluate(&f),
            (Outcome::Allow, vec!["office".into(), "new-device".into()])
        );
        f.user_agent = Some("CURL/8".into());
        assert_eq!(c.evaluate(&f).0, Outcome::Block);
        let g = Facts {
            custom: json!({"tier": "vip"}).as_object().unwrap().clone(),
            now: 1000,
            ..Facts::default()
        };
        assert_eq!(c.evaluate(&g), (Outcome::Review, vec!["vip".into()]));
        let single = Facts {
            ip: Some("192.0.2.7".parse().unwrap()),
            ..Facts::default()
        };
        assert_eq!(c.evaluate(&single).1, vec!["office".to_owned()]);
    }

    #[test]
    fn ipv4_mapped_addresses_and_networks_match_their_ipv4_forms() {
        let c = config();
        let at = |ip: &str| {
            c.evaluate(&Facts {
                ip: Some(ip.parse().unwrap()),
                ..Facts::default()
            })
            .1
        };
        let office = vec!["office".to_owned()];
        assert_eq!(at("::ffff:10.9.8.7"), office);
        assert_eq!(at("::ffff:192.0.2.7"), office);
        assert_eq!(at("::ffff:192.0.2.8"), Vec::<String>::new());
        assert_eq!(at("::ffff:11.0.0.1"), Vec::<String>::new());
        // Written the other way round: a mapped network in the rule, a plain IPv4 client.
        let mapped: ActionConfig = serde_json::from_value(json!({
            "defaultOutcome": "ALLOW",
            "rules": [{"id": "m", "name": "m", "priority": 1, "outcome": "BLOCK",
                       "conditions": [{"type": "ipInCidr", "cidrs": ["::ffff:203.0.113.0/120"]}]}]
        }))
        .unwrap();
        mapped.validate().unwrap();
        let facts = |ip: &str| Facts {
            ip: Some(ip.parse().unwrap()),
            ..Facts::default()
        };
        assert_eq!(mapped.evaluate(&facts("203.0.113.9")).0, Outcome::Block);
        assert_eq!(
            mapped.evaluate(&facts("::ffff:203.0.113.9")).0,
            Outcome::Block
        );
        assert_eq!(mapped.evaluate(&facts("203.0.114.9")).0, Outcome::Allow);
        // Other IPv6 networks stay IPv6.
        assert_eq!(
            parse_net("2001:db8::/32").unwrap().to_string(),
            "2001:db8::/32"
        );
    }

    #[test]
    fn action_count_counts_only_the_window() {
        let c = config();
        let mut f = Facts {
            now: 1000,
            earlier_actions: vec![100, 990, 995],
            ..Facts::default()
        };
        assert_eq!(
            c.evaluate(&f).0,
            Outcome::Allow,
            "3 in the window, this one included"
        );
        f.earlier_actions.push(999);
        assert_eq!(c.evaluate(&f), (Outcome::Block, vec!["burst".into()]));
    }

    #[test]
    fn bad_configurations_are_refused() {
        let mut c = config();
        c.rules[0].priority = 100;
        assert!(c.validate().is_err());
        let mut c = config();
        c.rules[1].id = "office".into();
        assert!(c.validate().is_err());
        let mut c = config();
        c.rules[0].conditions = vec![RuleCondition::IpInCidr {
            cidrs: vec!["not-a-net".into()],
        }];
        assert!(c.validate().is_err());
        assert_eq!(
            ActionConfig::default().evaluate(&Facts::default()).0,
            Outcome::Challenge
        );
    }
}
