//! What a run measured: nearest-rank percentiles, one scenario's summary, and the whole
//! report as a fixed-width table (for people) and one JSON line per scenario (for quoting).
use std::time::Duration;

/// A scenario fails when more than this share of its requests failed (1%).
pub const MAX_ERROR_PERCENT: usize = 1;

/// The nearest-rank `p`th percentile (0 < p <= 100) of ascending `sorted` samples: the smallest
/// sample with at least p% of samples at or below it. `None` for no samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() || !(p > 0.0 && p <= 100.0) {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// One scenario's measured phase.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioReport {
    pub scenario: &'static str,
    pub requests: usize,
    pub errors: usize,
    pub concurrency: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// The first few failures, as `HTTP 401 Unauthorized: {body}` or a transport error.
    pub error_samples: Vec<String>,
    /// Observations about successful responses (missing tokens, `isValid` counts).
    pub notes: Vec<String>,
}

impl ScenarioReport {
    /// Summarises `latencies` (every request's, in any order) and the failures.
    pub fn new(
        scenario: &'static str,
        concurrency: usize,
        wall: Duration,
        mut latencies: Vec<Duration>,
        errors: usize,
        error_samples: Vec<String>,
    ) -> Self {
        latencies.sort_unstable();
        let at = |p| percentile(&latencies, p).unwrap_or_default();
        Self {
            scenario,
            requests: latencies.len(),
            errors,
            concurrency,
            wall,
            p50: at(50.0),
            p90: at(90.0),
            p99: at(99.0),
            max: latencies.last().copied().unwrap_or_default(),
            error_samples,
            notes: Vec::new(),
        }
    }

    /// Requests per second over the wall time of the measured phase.
    pub fn rps(&self) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs > 0.0 {
            self.requests as f64 / secs
        } else {
            0.0
        }
    }

    /// More than 1% of the requests failed.
    pub fn failed(&self) -> bool {
        self.errors * 100 > self.requests * MAX_ERROR_PERCENT
    }

    /// One JSON object on one line, `scenario` first, for quoting in the README.
    pub fn json_line(&self) -> String {
        let num = |x: f64| serde_json::Value::from(x);
        format!(
            "{{\"scenario\":{},\"requests\":{},\"errors\":{},\"concurrency\":{},\"wall_s\":{},\"rps\":{},\"p50_ms\":{},\"p90_ms\":{},\"p99_ms\":{},\"max_ms\":{}}}",
            serde_json::Value::from(self.scenario),
            self.requests,
            self.errors,
            self.concurrency,
            num(round(self.wall.as_secs_f64(), 3)),
            num(round(self.rps(), 1)),
            num(round(ms(self.p50), 3)),
            num(round(ms(self.p90), 3)),
            num(round(ms(self.p99), 3)),
            num(round(ms(self.max), 3)),
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn round(x: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (x * scale).round() / scale
}

/// Every scenario that ran, and any that could not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub scenarios: Vec<ScenarioReport>,
    /// Scenarios that did not run, with the reason.
    pub skipped: Vec<String>,
}

impl Report {
    /// Every scenario ran and none failed more than 1% of its requests.
    pub fn passed(&self) -> bool {
        self.skipped.is_empty() && !self.scenarios.iter().any(ScenarioReport::failed)
    }

    /// A fixed-width table of the scenarios.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<10} {:>9} {:>7} {:>6} {:>9} {:>11} {:>9} {:>9} {:>9} {:>9}\n",
            "scenario",
            "requests",
            "errors",
            "conc",
            "wall_s",
            "req/s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms"
        );
        for s in &self.scenarios {
            out.push_str(&format!(
                "{:<10} {:>9} {:>7} {:>6} {:>9.3} {:>11.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3}\n",
                s.scenario,
                s.requests,
                s.errors,
                s.concurrency,
                s.wall.as_secs_f64(),
                s.rps(),
                ms(s.p50),
                ms(s.p90),
                ms(s.p99),
                ms(s.max),
            ));
        }
        out
    }

    /// What goes to stdout: the table, the notes, then one JSON line per scenario.
    pub fn summary(&self) -> String {
        let mut out = self.table();
        for s in &self.scenarios {
            for note in &s.notes {
                out.push_str(&format!("  {}: {note}\n", s.scenario));
            }
        }
        out.push('\n');
        for s in &self.scenarios {
            out.push_str(&s.json_line());
            out.push('\n');
        }
        out
    }

    /// What went wrong, for stderr: the first failures of each scenario and skipped scenarios.
    pub fn problems(&self) -> String {
        let mut out = String::new();
        for s in self.scenarios.iter().filter(|s| s.errors > 0) {
            let verdict = if s.failed() { "over" } else { "within" };
            out.push_str(&format!(
                "{}: {} of {} requests failed ({verdict} the {MAX_ERROR_PERCENT}% limit); first failures:\n",
                s.scenario, s.errors, s.requests
            ));
            for sample in &s.error_samples {
                out.push_str(&format!("  {sample}\n"));
            }
        }
        for skipped in &self.skipped {
            out.push_str(&format!("skipped {skipped}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let ms = |n: u64| Duration::from_millis(n);
        let sorted: Vec<_> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&sorted, 50.0), Some(ms(50)));
        assert_eq!(percentile(&sorted, 90.0), Some(ms(90)));
        assert_eq!(percentile(&sorted, 99.0), Some(ms(99)));
        assert_eq!(percentile(&sorted, 100.0), Some(ms(100)));
        assert_eq!(percentile(&sorted, 0.5), Some(ms(1)));

        let few = [ms(3), ms(7), ms(20)];
        assert_eq!(percentile(&few, 50.0), Some(ms(7)));
        assert_eq!(percentile(&few, 99.0), Some(ms(20)));
        assert_eq!(percentile(&[ms(4)], 99.0), Some(ms(4)));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&few, 0.0), None);
        assert_eq!(percentile(&few, 101.0), None);
    }

    #[test]
    fn report_summarises_and_prints_one_json_line() {
        let latencies = (1..=200).rev().map(Duration::from_millis).collect();
        let report = ScenarioReport::new(
            "track",
            16,
            Duration::from_secs(2),
            latencies,
            2,
            vec!["HTTP 500 Internal Server Error: {}".into()],
        );
        assert_eq!(report.requests, 200);
        assert_eq!(report.p50, Duration::from_millis(100));
        assert_eq!(report.p99, Duration::from_millis(198));
        assert_eq!(report.max, Duration::from_millis(200));
        assert!((report.rps() - 100.0).abs() < 1e-9);
        assert!(!report.failed(), "2 of 200 is exactly 1%");
        let over = ScenarioReport {
            errors: 3,
            ..report.clone()
        };
        assert!(over.failed());

        let line = report.json_line();
        assert!(
            line.starts_with("{\"scenario\":\"track\",\"requests\":200,"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["rps"], 100.0);
        assert_eq!(v["p50_ms"], 100.0);
        assert_eq!(v["p99_ms"], 198.0);
        assert_eq!(v["errors"], 2);

        let table = Report {
            scenarios: vec![report],
            skipped: vec![],
        };
        assert!(table.passed());
        assert!(
            table
                .table()
                .lines()
                .nth(1)
                .is_some_and(|l| l.starts_with("track"))
        );
        assert!(table.summary().ends_with(&format!("{line}\n")));
        assert!(table.problems().contains("HTTP 500"));
    }
}
