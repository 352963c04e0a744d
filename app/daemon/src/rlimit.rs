//! The daemon's descriptor limit.

/// Raises the soft limit on open descriptors (RLIMIT_NOFILE) to the hard
/// limit and logs the figure. The caps of [`crate::limits`] keep the daemon
/// far below it; the headroom is for honest use (shared folders, views).
pub fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes one rlimit into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        tracing::warn!(
            "cannot read the descriptor limit: {}",
            std::io::Error::last_os_error()
        );
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        tracing::info!("descriptor limit {}", limit.rlim_cur);
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit(2) reads one rlimit from a struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        tracing::warn!(
            "descriptor limit {} (raising it to {} failed: {})",
            limit.rlim_cur,
            limit.rlim_max,
            std::io::Error::last_os_error()
        );
        return;
    }
    tracing::info!(
        "descriptor limit raised from {} to {}",
        limit.rlim_cur,
        limit.rlim_max
    );
}
