//! Reads one counter from a Prometheus text page (an operator's /metrics).

/// The sum of every sample of the metric `name` (all label sets), or `None` when the page
/// cannot be fetched.
pub fn counter_sum(addr: &str, name: &str) -> Option<f64> {
    let (code, body) = crate::env::http_get(addr, "/metrics");
    (code == 200).then(|| sum_in(&body, name))
}

/// The sum of the samples of `name` in `page`.
pub fn sum_in(page: &str, name: &str) -> f64 {
    (page.lines().filter(|l| !l.starts_with('#')))
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn sums_every_label_set_and_ignores_longer_names() {
        let page = "# HELP x\nops_total{a=\"1\"} 2\nops_total{a=\"2\"} 3\nops_total_bucket 9\nops_total 1\n";
        assert_eq!(super::sum_in(page, "ops_total"), 6.0);
    }
}
