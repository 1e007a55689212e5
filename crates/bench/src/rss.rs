//! Process memory from `/proc/self/status`: the peak (`VmHWM`) every report carries and the
//! current resident set (`VmRSS`) the soak samples. `None` where `/proc` is unavailable.

/// The process's peak resident set size in MiB since it started (`VmHWM`).
pub fn peak_rss_mib() -> Option<f64> {
    status_kib("VmHWM:").map(kib_to_mib)
}

/// The process's resident set size in MiB right now (`VmRSS`).
pub fn current_rss_mib() -> Option<f64> {
    status_kib("VmRSS:").map(kib_to_mib)
}

fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The value in kB of the `/proc/self/status` line starting with `key`.
fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_kib(&status, key)
}

fn parse_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kib_value_of_a_status_line() {
        let status = "Name:\tbench\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(parse_kib(status, "VmHWM:"), Some(20_480));
        assert_eq!(parse_kib(status, "VmRSS:"), Some(10_240));
        assert_eq!(parse_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn reads_this_process_memory_on_linux() {
        if cfg!(target_os = "linux") {
            let peak = peak_rss_mib().expect("VmHWM on linux");
            let now = current_rss_mib().expect("VmRSS on linux");
            assert!(peak > 0.0 && now > 0.0 && now <= peak + 1.0);
        }
    }
}
