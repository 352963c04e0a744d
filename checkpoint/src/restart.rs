//! Resuming a thread that was stopped inside a system call, the way the kernel would.

use crate::sys::{Regs, nr};

const ERESTARTSYS: i64 = 512;
const ERESTARTNOINTR: i64 = 513;
const ERESTARTNOHAND: i64 = 514;
const ERESTART_RESTARTBLOCK: i64 = 516;
const TIMER_ABSTIME: u64 = 1;

/// Registers to resume `saved` with when no signal handler runs first.
///
/// A thread frozen inside an interrupted call has `rax = -ERESTART*` and `orig_rax = nr`;
/// the kernel would back `rip` up over the 2-byte `syscall` instruction and re-issue the call.
/// We do the same. `-ERESTART_RESTARTBLOCK` means the kernel kept a restart block: in the same
/// process (`same_process`) we call `restart_syscall` as the kernel would; in a restored process
/// that block is gone, so we re-issue the original call, and for a relative
/// `nanosleep`/`clock_nanosleep` with a `rem` pointer we sleep for the remaining time the kernel
/// wrote there (by passing `rem` as the request) so the sleep neither ends early nor restarts
/// from the beginning.
pub fn resume_regs(saved: &Regs, same_process: bool) -> Regs {
    let mut r = *saved;
    if (r.orig_rax as i64) < 0 {
        return r;
    }
    match -(r.rax as i64) {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => {
            r.rax = r.orig_rax;
            r.rip -= 2;
        }
        ERESTART_RESTARTBLOCK => {
            r.rip -= 2;
            if same_process {
                r.rax = nr::RESTART_SYSCALL;
            } else {
                r.rax = r.orig_rax;
                match r.orig_rax {
                    nr::NANOSLEEP if r.rsi != 0 => r.rdi = r.rsi,
                    nr::CLOCK_NANOSLEEP if r.r10 != 0 && r.rsi & TIMER_ABSTIME == 0 => {
                        r.rdx = r.r10
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
    r
}

/// If the thread was inside a restartable sequence's critical section, move it to the abort
/// handler, as the kernel would on preemption. `read` fetches 8 bytes of the tracee's memory.
pub fn rseq_fixup(
    regs: &mut Regs,
    rseq_area: Option<u64>,
    read: impl Fn(u64, usize) -> Option<Vec<u8>>,
) {
    let Some(area) = rseq_area else { return };
    let word = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
    let Some(cs_ptr) = read(area + 8, 8).map(|b| word(&b, 0)) else {
        return;
    };
    if cs_ptr == 0 {
        return;
    }
    // struct rseq_cs { u32 version; u32 flags; u64 start_ip; u64 post_commit_offset; u64 abort_ip; }
    let Some(cs) = read(cs_ptr, 32) else { return };
    let (start, len, abort) = (word(&cs, 8), word(&cs, 16), word(&cs, 24));
    if regs.rip >= start && regs.rip < start.wrapping_add(len) {
        tracing::debug!(
            rip = regs.rip,
            abort,
            "thread inside rseq critical section: aborting"
        );
        regs.rip = abort;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_backs_up_over_syscall() {
        let r = Regs {
            orig_rax: 0,
            rax: (-ERESTARTSYS) as u64,
            rip: 0x1002,
            ..Default::default()
        };
        let n = resume_regs(&r, false);
        assert_eq!((n.rax, n.rip), (0, 0x1000));
    }

    #[test]
    fn nanosleep_uses_remaining_time() {
        let r = Regs {
            orig_rax: nr::CLOCK_NANOSLEEP,
            rax: (-ERESTART_RESTARTBLOCK) as u64,
            rip: 0x2002,
            rdx: 0x10,
            r10: 0x20,
            ..Default::default()
        };
        let n = resume_regs(&r, false);
        assert_eq!((n.rax, n.rip, n.rdx), (nr::CLOCK_NANOSLEEP, 0x2000, 0x20));
        assert_eq!(resume_regs(&r, true).rax, nr::RESTART_SYSCALL);
    }

    #[test]
    fn user_code_untouched() {
        let r = Regs {
            orig_rax: u64::MAX,
            rax: 5,
            rip: 7,
            ..Default::default()
        };
        assert_eq!(resume_regs(&r, false), r);
    }
}
