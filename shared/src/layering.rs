//! The crate's module graph, read from its own sources, checked against the layering of
//! `docs/architecture.md` §2: no import circles between modules, the domain on the ports alone,
//! and one composition root.
//!
//! Hand-written rather than a tool such as `cargo-modules`: the check is forty lines over the
//! sources, runs in `cargo test` with nothing installed, and states our rules, not a tool's.
//!
//! A module is a file (`domain/otp.rs` is `domain::otp`). An edge `a → b` is a path
//! `crate::b…` in the code of `a` (comments and `#[cfg(test)]` modules left out). Edges between
//! a module and its own ancestors or descendants are structure (`mod`, `super::*`), not
//! dependencies.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type Graph = BTreeMap<String, BTreeSet<String>>;

fn module_name(rel: &Path) -> String {
    let s = rel.with_extension("").to_string_lossy().replace('\\', "/");
    let s = s.strip_suffix("/mod").unwrap_or(&s).to_owned();
    if s == "lib" {
        String::new()
    } else {
        s.replace('/', "::")
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` items.
fn code(text: &str) -> String {
    let text = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = String::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        rest = skip_item(&rest[at + "#[cfg(test)]".len()..]);
    }
    out.push_str(rest);
    out
}

/// What follows the item at the start of `s`: up to its `;`, or past its balanced braces.
fn skip_item(s: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        match c {
            ';' if depth == 0 => return &s[i + 1..],
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &s[i + 1..];
                }
            }
            _ => {}
        }
    }
    ""
}

/// Every `crate::a::b::…` path in `code`, also inside `crate::{a, b::c}` groups.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = group.split('}').next().unwrap_or_default();
            out.extend(inner.split(',').map(|p| path_prefix(p.trim())));
        } else {
            out.push(path_prefix(rest));
        }
    }
    out
}

fn path_prefix(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
        .collect::<String>()
        .trim_end_matches(':')
        .to_owned()
}

fn related(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}::")) || b.starts_with(&format!("{a}::")) || b.is_empty()
}

pub(crate) fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let texts: BTreeMap<String, String> = files
        .iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(src).ok()?;
            Some((module_name(rel), code(&std::fs::read_to_string(f).ok()?)))
        })
        .collect();
    let modules: BTreeSet<&str> = texts.keys().map(String::as_str).collect();
    // The longest module a path names: `crate::domain::otp::verify` is `domain::otp`.
    let resolve = |path: &str| -> Option<String> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len())
            .rev()
            .map(|n| parts[..n].join("::"))
            .find(|m| modules.contains(m.as_str()))
    };
    texts
        .iter()
        .map(|(m, text)| {
            let deps = crate_paths(text)
                .iter()
                .filter_map(|p| resolve(p))
                .filter(|d| !related(m, d))
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

/// The first circle found, as the modules along it.
pub(crate) fn circle(g: &Graph) -> Option<Vec<String>> {
    fn visit(
        g: &Graph,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut c = path[at..].to_vec();
            c.push(m.to_owned());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    g.keys()
        .find_map(|m| visit(g, m, &mut Vec::new(), &mut done))
}

/// The top-level modules (`domain`, `ports`, …) each module's layer depends on.
pub(crate) fn layers(g: &Graph) -> BTreeMap<String, BTreeSet<String>> {
    let top = |m: &str| m.split("::").next().unwrap_or_default().to_owned();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (m, deps) in g {
        let entry = out.entry(top(m)).or_default();
        entry.extend(deps.iter().map(|d| top(d)).filter(|d| *d != top(m)));
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn crate_graph() -> Graph {
        graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"))
    }

    #[test]
    fn no_module_imports_a_module_that_imports_it_back() {
        let g = crate_graph();
        assert!(g.len() > 40, "read the sources: {:?}", g.keys());
        assert_eq!(circle(&g), None);
    }

    #[test]
    fn the_domain_uses_ports_crypto_and_ids_alone_and_one_module_wires() {
        let layers = crate_graph();
        let layers = layers_of(&layers);
        let allowed: &[(&str, &[&str])] = &[
            ("ids", &[]),
            ("canonical", &[]),
            ("ports", &["canonical"]),
            ("crypto", &["ports"]),
            ("domain", &["ports", "crypto", "ids", "canonical"]),
            ("adapters", &["ports"]),
            ("http", &["domain", "ports"]),
            ("config", &["domain", "http", "ids"]),
            ("logging", &[]),
            ("layering", &[]),
            ("testing", &["adapters", "domain", "ports"]),
            ("wiring", &["adapters", "config", "domain", "http", "ports"]),
        ];
        for (layer, deps) in &layers {
            let Some((_, ok)) = allowed.iter().find(|(l, _)| l == layer) else {
                panic!("module {layer} has no place in the layering; add it here and to the docs");
            };
            for d in deps {
                assert!(ok.contains(&d.as_str()), "{layer} must not depend on {d}");
            }
        }
        let wiring_like: Vec<_> = layers
            .iter()
            .filter(|(_, d)| d.contains("config") && d.contains("adapters"))
            .map(|(l, _)| l.as_str())
            .collect();
        assert_eq!(wiring_like, ["wiring"], "one composition root");
    }

    fn layers_of(g: &Graph) -> BTreeMap<String, BTreeSet<String>> {
        layers(g)
            .into_iter()
            .filter(|(l, _)| !l.is_empty())
            .collect()
    }

    #[test]
    fn a_circle_is_found_and_named() {
        let g: Graph = [
            ("a", &["b"][..]),
            ("b", &["c"][..]),
            ("c", &["a"][..]),
            ("d", &[][..]),
        ]
        .into_iter()
        .map(|(m, d)| (m.to_owned(), d.iter().map(|x| (*x).to_owned()).collect()))
        .collect();
        assert_eq!(circle(&g).unwrap(), ["a", "b", "c", "a"]);
    }

    #[test]
    fn paths_in_groups_and_comments_are_read_as_code_is() {
        let text = code(
            "use crate::{ports::Store, domain::otp};\n// crate::wiring\n#[cfg(test)]\nuse crate::http;\n\
             #[cfg(test)]\nmod t { use crate::config; }\nfn f() { crate::ids::valid(); }",
        );
        let mut paths = crate_paths(&text);
        paths.sort();
        assert_eq!(paths, ["domain::otp", "ids::valid", "ports::Store"]);
    }
}
