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

/// Every path a use tree starting at `text` names: `a::b`, `a::{b, c::{d, e}}`, `a::b as c`.
/// Each comes with the name it is known by where it is imported (its last segment, or alias).
fn use_tree(text: &str) -> Vec<(String, String)> {
    fn tree(chars: &[char], at: &mut usize, prefix: &str, out: &mut Vec<(String, String)>) {
        let mut seg = String::new();
        while *at < chars.len() && (chars[*at].is_ascii_alphanumeric() || "_:".contains(chars[*at]))
        {
            seg.push(chars[*at]);
            *at += 1;
        }
        let path = format!("{prefix}{seg}");
        if chars.get(*at) == Some(&'{') {
            *at += 1;
            loop {
                while chars
                    .get(*at)
                    .is_some_and(|c| c.is_whitespace() || *c == ',')
                {
                    *at += 1;
                }
                match chars.get(*at) {
                    None => return,
                    Some('}') => {
                        *at += 1;
                        return;
                    }
                    Some(_) => {
                        let before = *at;
                        tree(chars, at, &path, out);
                        if *at == before {
                            *at += 1; // something this reader does not know, such as `*`
                        }
                    }
                }
            }
        }
        let path = path.trim_end_matches(':').to_owned();
        // `as Alias`: read and step over it.
        let mut look = *at;
        while chars.get(look).is_some_and(|c| c.is_whitespace()) {
            look += 1;
        }
        let mut alias = None;
        if chars.get(look..look + 3) == Some(&['a', 's', ' ']) {
            look += 3;
            while chars.get(look).is_some_and(|c| c.is_whitespace()) {
                look += 1;
            }
            let name: String = chars[look..]
                .iter()
                .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                .collect();
            *at = look + name.chars().count();
            alias = Some(name);
        }
        let name = alias.unwrap_or_else(|| path.rsplit("::").next().unwrap_or_default().to_owned());
        if !path.is_empty() {
            out.push((path, name));
        }
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    tree(&chars, &mut 0, "", &mut out);
    out
}

/// Every `crate::…` and `super::…` path in `code`, made absolute for module `m`, with the
/// name each is imported as.
fn paths(code: &str, m: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let preceded = code[..i].chars().next_back();
        if preceded.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') {
            continue; // `$crate::` or part of a longer name
        }
        out.extend(use_tree(&code[i + "crate::".len()..]));
    }
    for (i, _) in code.match_indices("super::") {
        if code[..i].ends_with("super::") {
            continue; // the tail of `super::super::`, read with its head
        }
        let mut base: Vec<&str> = m.split("::").filter(|s| !s.is_empty()).collect();
        let mut rest = &code[i..];
        while let Some(r) = rest.strip_prefix("super::") {
            base.pop();
            rest = r;
        }
        let prefix = if base.is_empty() {
            String::new()
        } else {
            format!("{}::", base.join("::"))
        };
        out.extend(
            use_tree(rest)
                .into_iter()
                .map(|(p, n)| (format!("{prefix}{p}"), n)),
        );
    }
    out
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
    // The longest module a path names: `domain::otp::verify` is `domain::otp`.
    let longest = |path: &str| -> Option<(String, Option<String>)> {
        let parts: Vec<&str> = path.split("::").collect();
        (1..=parts.len()).rev().find_map(|n| {
            let m = parts[..n].join("::");
            modules
                .contains(m.as_str())
                .then(|| (m, parts.get(n).map(|s| (*s).to_owned())))
        })
    };
    // What each module re-exports (`pub use x::Item;`): (module, name) → the path it names.
    let mut reexports: BTreeMap<(String, String), String> = BTreeMap::new();
    for (m, text) in &texts {
        for (i, _) in text.match_indices("pub use ") {
            let stmt = &text[i + "pub use ".len()..];
            let stmt = stmt.split(';').next().unwrap_or_default();
            let absolute: Vec<(String, String)> =
                if stmt.starts_with("crate::") || stmt.starts_with("super::") {
                    paths(stmt, m)
                } else {
                    let own = stmt.strip_prefix("self::").unwrap_or(stmt);
                    let prefix = if m.is_empty() {
                        String::new()
                    } else {
                        format!("{m}::")
                    };
                    use_tree(own)
                        .into_iter()
                        .map(|(p, n)| (format!("{prefix}{p}"), n))
                        .collect()
                };
            for (path, name) in absolute {
                reexports.insert((m.clone(), name), path);
            }
        }
    }
    // A path's module, re-exports followed to where the item is defined.
    let resolve = |path: &str| -> Option<String> {
        let mut path = path.to_owned();
        for _ in 0..8 {
            let (m, next) = longest(&path)?;
            match next.and_then(|n| reexports.get(&(m.clone(), n))) {
                Some(target) if *target != path => path = target.clone(),
                _ => return Some(m),
            }
        }
        None
    };
    texts
        .iter()
        .map(|(m, text)| {
            let deps = paths(text, m)
                .iter()
                .filter_map(|(p, _)| resolve(p))
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
            "use crate::{ports::Store, domain::{otp, x::Y as Z}};\n// crate::wiring\n#[cfg(test)]\n\
             use crate::http;\n#[cfg(test)]\nmod t { use crate::config; }\n\
             fn f() { crate::ids::valid(); super::super::adapters::a(); }",
        );
        let mut found = paths(&text, "domain::otp::email");
        found.sort();
        let names: Vec<(&str, &str)> = found
            .iter()
            .map(|(p, n)| (p.as_str(), n.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("domain::adapters::a", "a"),
                ("domain::otp", "otp"),
                ("domain::x::Y", "Z"),
                ("ids::valid", "valid"),
                ("ports::Store", "Store"),
            ]
        );
    }

    #[test]
    fn a_circle_through_a_re_export_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path();
        std::fs::create_dir(src.join("d")).unwrap();
        std::fs::write(src.join("lib.rs"), "pub mod d;").unwrap();
        std::fs::write(
            src.join("d/mod.rs"),
            "pub mod a; pub mod b;\npub use a::Thing;",
        )
        .unwrap();
        std::fs::write(
            src.join("d/a.rs"),
            "use crate::d::b::Other; pub struct Thing;",
        )
        .unwrap();
        std::fs::write(src.join("d/b.rs"), "use crate::d::Thing; pub struct Other;").unwrap();
        let c = circle(&graph(src)).unwrap();
        assert!(
            c.contains(&"d::a".to_owned()) && c.contains(&"d::b".to_owned()),
            "{c:?}"
        );
    }
}
