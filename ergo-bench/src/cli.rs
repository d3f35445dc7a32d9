//! The command line: `ergo-bench [--quick] [--reps N] [WORKLOAD...]`.

use crate::workloads::WORKLOADS;

/// What to run, from the command line.
pub(crate) struct Config {
    /// Divide every count by 10.
    pub(crate) quick: bool,
    /// Runs per workload; the best is reported.
    pub(crate) reps: usize,
    /// Substrings selecting workloads; empty keeps all.
    filters: Vec<String>,
}

impl Config {
    /// Reads the arguments (and `ERGO_BENCH_QUICK`); `Err` holds the message to print (the usage
    /// for `--help`).
    pub(crate) fn from_args() -> Result<Config, String> {
        let mut cfg = Config {
            quick: std::env::var_os("ERGO_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0"),
            reps: 3,
            filters: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" | "-q" => cfg.quick = true,
                "--reps" => {
                    cfg.reps = args
                        .next()
                        .and_then(|n| n.parse().ok())
                        .filter(|&n| n > 0)
                        .ok_or("--reps takes a positive number")?;
                }
                "--help" | "-h" => return Err(usage()),
                flag if flag.starts_with('-') => {
                    return Err(format!("unknown option `{flag}`\n{}", usage()))
                }
                filter => cfg.filters.push(filter.to_owned()),
            }
        }
        if let Some(bad) = cfg
            .filters
            .iter()
            .find(|f| !WORKLOADS.iter().any(|w| selects(f, w.name)))
        {
            return Err(format!("no workload matches `{bad}`\n{}", usage()));
        }
        Ok(cfg)
    }

    /// Whether `workload` (and its baseline) should run.
    pub(crate) fn wants(&self, workload: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| selects(f, workload))
    }

    /// `full` divided by 10 under `--quick`.
    pub(crate) fn count(&self, full: u64) -> u64 {
        if self.quick {
            full / 10
        } else {
            full
        }
    }
}

/// Whether `filter` keeps `workload`: a filter naming a workload (or its baseline) exactly keeps
/// only that one, any other keeps those whose names contain it.
fn selects(filter: &str, workload: &str) -> bool {
    let names = |w: &str| [w.to_owned(), format!("tokio_{w}")];
    if WORKLOADS
        .iter()
        .any(|w| names(w.name).iter().any(|n| n == filter))
    {
        names(workload).iter().any(|n| n == filter)
    } else {
        names(workload).iter().any(|n| n.contains(filter))
    }
}

/// The `--help` text, with every workload and what it measures.
fn usage() -> String {
    let mut text = String::from(
        "usage: ergo-bench [--quick] [--reps N] [WORKLOAD...]\n  --quick (or ERGO_BENCH_QUICK=1) \
         divides every count by 10; --reps N keeps the best of N runs (default 3); a WORKLOAD \
         argument naming a workload (or its tokio_ baseline) exactly keeps that one, any other \
         keeps those whose names contain it\n\nworkloads, in the order they run:\n",
    );
    for w in WORKLOADS {
        text.push_str(&format!("  {:<20} {}\n", w.name, w.about));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_name_keeps_only_that_workload() {
        assert!(selects("tell_p1", "tell_p1"));
        assert!(!selects("tell_p1", "remote_tell_p1"));
        assert!(selects("tokio_tell_p1", "tell_p1"));
    }

    #[test]
    fn a_substring_keeps_every_workload_containing_it() {
        assert!(selects("remote", "remote_ask"));
        assert!(selects("remote", "publish_remote"));
        assert!(!selects("remote", "ask_roundtrip"));
    }

    #[test]
    fn workload_names_are_unique() {
        for (i, w) in WORKLOADS.iter().enumerate() {
            assert!(
                WORKLOADS[i + 1..].iter().all(|o| o.name != w.name),
                "{} is listed twice",
                w.name
            );
        }
    }
}
