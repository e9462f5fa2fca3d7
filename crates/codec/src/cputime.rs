//! [`thread_cpu_time`]: CPU time of the calling thread, so decode and encode costs in `/metrics` are
//! CPU actually spent, not wall time that includes waiting for the other core.

use std::time::Duration;

/// CPU time the calling thread has used so far (zero if the clock cannot be read).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, exclusively borrowed `ts`.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_counts_work_not_sleep() {
        let a = thread_cpu_time();
        std::thread::sleep(Duration::from_millis(50));
        let b = thread_cpu_time();
        let mut x = 0u64;
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(30) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let c = thread_cpu_time();
        assert!(x > 0);
        assert!(
            b - a < Duration::from_millis(20),
            "sleeping counted: {:?}",
            b - a
        );
        assert!(
            c - b >= Duration::from_millis(10),
            "work not counted: {:?}",
            c - b
        );
    }
}
