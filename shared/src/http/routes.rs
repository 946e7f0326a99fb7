//! Routers built from route tables, and (feature `testing`) the checks the functions' tests run
//! on their tables: against the router, an OpenAPI document and `template.yaml`'s routes.
//!
//! Each function keeps one table of its routes (method, path, and an id whose handler an
//! exhaustive `match` gives). [`from_table`] is the only way a function's router is made, so
//! the router serves exactly the table's paths; each function's tests then check the table
//! against the router's methods, its OpenAPI description where it has one, and the template.
use axum::Router;
use axum::routing::MethodRouter;
use std::collections::BTreeMap;

/// A router with one route per distinct path of `rows`, each path's method routers merged.
/// Two rows with the same method and path are a programming error axum refuses at start-up;
/// each function's router test builds its router, so such a table never ships.
pub fn from_table<S>(rows: impl IntoIterator<Item = (&'static str, MethodRouter<S>)>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut paths: BTreeMap<&'static str, MethodRouter<S>> = BTreeMap::new();
    for (path, methods) in rows {
        let merged = match paths.remove(path) {
            Some(existing) => existing.merge(methods),
            None => methods,
        };
        paths.insert(path, merged);
    }
    paths
        .into_iter()
        .fold(Router::new(), |router, (path, methods)| {
            router.route(path, methods)
        })
}

#[cfg(any(test, feature = "testing"))]
/// One `HttpApi` event of `template.yaml`: the function (logical id) it invokes, its method
/// (`ANY` or a verb) and path (possibly ending in a greedy `{proxy+}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRoute {
    pub function: String,
    pub method: String,
    pub path: String,
}

#[cfg(any(test, feature = "testing"))]
/// The `HttpApi` events of every function in a SAM template.
///
/// A line scanner, not a YAML parser: CloudFormation's short tags (`!Ref`, `!Sub`) are not
/// YAML a plain parser accepts, and the template's shape is ours: a resource is a line of two
/// spaces and a name ending in `:`, and an event's `Method:` line comes before its `Path:`.
/// (`infra/ci/check_template.py` reads the template with cfn-lint for everything else.)
pub fn template_routes(template: &str) -> Vec<TemplateRoute> {
    let mut out = Vec::new();
    let mut resource = String::new();
    let mut method: Option<String> = None;
    let mut in_http_event = false;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let text = line.trim();
        if indent == 2 && text.ends_with(':') && !text.starts_with('#') {
            resource = text.trim_end_matches(':').to_owned();
            method = None;
            in_http_event = false;
        } else if let Some(kind) = text.strip_prefix("Type:") {
            in_http_event = kind.trim() == "HttpApi";
            method = None;
        } else if in_http_event {
            if let Some(m) = text.strip_prefix("Method:") {
                method = Some(m.trim().to_uppercase());
            } else if let Some(p) = text.strip_prefix("Path:")
                && let Some(m) = method.take()
            {
                out.push(TemplateRoute {
                    function: resource.clone(),
                    method: m,
                    path: p.trim().to_owned(),
                });
            }
        }
    }
    out
}

#[cfg(any(test, feature = "testing"))]
/// The template route API Gateway (HTTP API) picks for a request: an exact path before a
/// greedy one, the longest greedy prefix first, a named method before `ANY`.
pub fn pick<'a>(
    routes: &'a [TemplateRoute],
    method: &str,
    path: &str,
) -> Option<&'a TemplateRoute> {
    let score =
        |r: &TemplateRoute| -> Option<(usize, usize, bool)> {
            let method_ok = r.method == "ANY" || r.method.eq_ignore_ascii_case(method);
            if !method_ok {
                return None;
            }
            let named = r.method != "ANY";
            match r.path.strip_suffix("{proxy+}") {
                Some(prefix) => (path.starts_with(prefix) && path.len() > prefix.len())
                    .then_some((0, prefix.len(), named)),
                None => same_shape(&r.path, path).then_some((1, r.path.len(), named)),
            }
        };
    routes
        .iter()
        .filter_map(|r| score(r).map(|s| (s, r)))
        .max_by_key(|(s, _)| *s)
        .map(|(_, r)| r)
}

#[cfg(any(test, feature = "testing"))]
/// Whether two paths have the same segments, a `{param}` in `pattern` matching any one.
fn same_shape(pattern: &str, path: &str) -> bool {
    let a: Vec<&str> = pattern.split('/').collect();
    let b: Vec<&str> = path.split('/').collect();
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || (x.starts_with('{') && x.ends_with('}')))
}

#[cfg(any(test, feature = "testing"))]
/// What is wrong between a function's table and the template, in words; empty when they agree:
/// every row must reach `function` through the template, and every template route of
/// `function` must lead to at least one row (or to `extra`, the paths the shared layer adds,
/// such as `/health`).
pub fn template_mismatches(
    template: &str,
    function: &str,
    rows: &[(&str, &str)],
    extra: &[(&str, &str)],
) -> Vec<String> {
    let routes = template_routes(template);
    let mut problems = Vec::new();
    for (method, path) in rows {
        match pick(&routes, method, path) {
            Some(r) if r.function == function => {}
            Some(r) => problems.push(format!("{method} {path} reaches {}", r.function)),
            None => problems.push(format!("{method} {path} has no route in the template")),
        }
    }
    for r in routes.iter().filter(|r| r.function == function) {
        let leads = rows.iter().chain(extra).any(|(m, p)| {
            pick(std::slice::from_ref(r), m, p).is_some() && pick(&routes, m, p) == Some(r)
        });
        if !leads {
            problems.push(format!(
                "template route {} {} of {function} serves no route of the table",
                r.method, r.path
            ));
        }
    }
    problems
}

/// The status `router` answers `method` on `path` with (each `{param}` filled in), unauthenticated.
#[cfg(any(test, feature = "testing"))]
pub async fn answer(router: &Router, method: &str, path: &str) -> Option<http::StatusCode> {
    use tower::ServiceExt as _;
    let uri: Vec<String> = path
        .split('/')
        .map(|seg| {
            if seg.starts_with('{') {
                "x1".to_owned()
            } else {
                seg.to_owned()
            }
        })
        .collect();
    let req = http::Request::builder()
        .method(method)
        .uri(uri.join("/"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ORIGIN, "https://example.com")
        .header("access-control-request-method", "POST")
        .body(axum::body::Body::from("{}"))
        .ok()?;
    let Ok(resp) = router.clone().oneshot(req).await;
    Some(resp.status())
}

#[cfg(any(test, feature = "testing"))]
/// The methods `router` serves on `path` (a table path: each `{param}` is filled in): those of
/// GET, POST, PUT, PATCH and DELETE that get anything but the wire 404 or 405 of an unrouted
/// request. An unauthenticated probe: handlers answer 401, 400 or 200, never those.
pub async fn methods_served(router: &Router, path: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let status = answer(router, method, path).await;
        if status.is_some_and(|s| {
            s != http::StatusCode::METHOD_NOT_ALLOWED && s != http::StatusCode::NOT_FOUND
        }) {
            out.push(method);
        }
    }
    out
}

#[cfg(any(test, feature = "testing"))]
/// What differs between a table's rows and what `router` serves on the table's paths, in
/// words; empty when the router serves exactly the table.
pub async fn router_mismatches(router: &Router, rows: &[(&str, &str)]) -> Vec<String> {
    let mut paths: Vec<&str> = rows.iter().map(|(_, p)| *p).collect();
    paths.sort_unstable();
    paths.dedup();
    let mut problems = Vec::new();
    for path in paths {
        let mut want: Vec<&str> = rows
            .iter()
            .filter(|(_, p)| *p == path)
            .map(|(m, _)| *m)
            .collect();
        want.sort_unstable();
        let mut served = methods_served(router, path).await;
        served.sort_unstable();
        if want != served {
            problems.push(format!(
                "{path}: the table has {want:?}, the router serves {served:?}"
            ));
        }
    }
    problems
}

#[cfg(any(test, feature = "testing"))]
/// The operations of an OpenAPI document, as (method, path) pairs, sorted.
pub fn openapi_operations(doc: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().into_iter().flatten().map(|(k, _)| k) {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TEMPLATE: &str = "Resources:
  AuthFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Health:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /health
        Api:
          Type: HttpApi
          Properties:
            Method: ANY
            Path: /v1/{proxy+}
  ClientFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        ClientApi:
          Type: HttpApi
          Properties:
            Method: ANY
            Path: /v1/client/{proxy+}
";

    #[test]
    fn reads_each_functions_http_events() {
        let routes = template_routes(TEMPLATE);
        let seen: Vec<(&str, &str, &str)> = routes
            .iter()
            .map(|r| (r.function.as_str(), r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                ("AuthFunction", "GET", "/health"),
                ("AuthFunction", "ANY", "/v1/{proxy+}"),
                ("ClientFunction", "ANY", "/v1/client/{proxy+}"),
            ]
        );
    }

    #[test]
    fn the_most_specific_route_wins_as_in_api_gateway() {
        let routes = template_routes(TEMPLATE);
        let f = |m, p| pick(&routes, m, p).map(|r| r.function.as_str());
        assert_eq!(f("POST", "/v1/client/challenge"), Some("ClientFunction"));
        assert_eq!(
            f("POST", "/v1/users/{userId}/actions/{action}"),
            Some("AuthFunction")
        );
        assert_eq!(f("GET", "/health"), Some("AuthFunction"));
        assert_eq!(f("POST", "/health"), None);
        assert_eq!(f("GET", "/status"), None);
    }

    #[test]
    fn mismatches_name_rows_that_miss_and_routes_that_serve_nothing() {
        let ok = template_mismatches(
            TEMPLATE,
            "AuthFunction",
            &[("POST", "/v1/validate")],
            &[("GET", "/health")],
        );
        assert_eq!(ok, Vec::<String>::new());
        let wrong = template_mismatches(
            TEMPLATE,
            "AuthFunction",
            &[("POST", "/v1/client/challenge"), ("GET", "/status")],
            &[],
        );
        assert_eq!(
            wrong,
            [
                "POST /v1/client/challenge reaches ClientFunction",
                "GET /status has no route in the template",
                "template route GET /health of AuthFunction serves no route of the table",
                "template route ANY /v1/{proxy+} of AuthFunction serves no route of the table",
            ]
        );
    }
}
