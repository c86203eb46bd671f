//! Data-parallel training across processes on PyTorch's own distributed engine (c10d),
//! as `torchrun` launches it: the environment names this process's rank, the ranks meet
//! through a TCPStore, and a process group sums their gradients (csrc/dist.cpp): Gloo on
//! the CPU, NCCL on CUDA (each rank on `cuda:LOCAL_RANK`) in builds that carry it.
//!
//! What a rank computes is its share of every global batch (`share`); what it exchanges
//! per step is the flat gradient weighted by that share, and three numbers (the weighted
//! loss and KL, and whether a stop was asked for), so every rank takes the same AdamW step,
//! sees the same loss, and stops at the same step.
//!
//! Failure is never a hang: joining, every collective and every store call are bounded by
//! `--dist-timeout`, and a failed collective names the rank that is gone.

use crate::invalid::Invalid;
use anyhow::{anyhow, bail, Context, Result};
use std::ffi::{c_char, c_int, c_longlong, c_void, CStr, CString};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

/// torchrun's variables that describe this process, as this program reads them.
#[derive(Clone, Debug, PartialEq)]
pub struct Launch {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub master_addr: String,
    pub master_port: u16,
    /// torchrun's agent serves the store (TORCHELASTIC_USE_AGENT_STORE=True): every rank
    /// is a client. Otherwise rank 0 serves it.
    pub agent_store: bool,
    /// Keys of this launch live under this prefix: a restarted group (torchrun
    /// --max-restarts) never reads the keys of the one before.
    pub prefix: String,
}

impl Launch {
    /// The launch described by `var` (the process environment in the binary): None when
    /// neither WORLD_SIZE nor RANK is set (a plain run).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Launch>> {
        if var("WORLD_SIZE").is_none() && var("RANK").is_none() {
            return Ok(None);
        }
        let get = |name: &str| {
            var(name).ok_or_else(|| {
                anyhow!("{name} is not set: start data-parallel training with torchrun, which sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT")
            })
        };
        let number = |name: &str| -> Result<usize> {
            let v = get(name)?;
            v.trim().parse().map_err(|_| anyhow!("{name} must be a whole number, got {v:?}"))
        };
        let (rank, world) = (number("RANK")?, number("WORLD_SIZE")?);
        if world == 0 || rank >= world {
            bail!("RANK {rank} is not below WORLD_SIZE {world}");
        }
        let local_rank = match var("LOCAL_RANK") {
            Some(_) => number("LOCAL_RANK")?,
            None => rank,
        };
        let master_addr = get("MASTER_ADDR")?;
        let port = get("MASTER_PORT")?;
        let master_port =
            port.trim().parse::<u16>().ok().filter(|&p| p > 0).ok_or_else(|| {
                anyhow!("MASTER_PORT must be a port number (1–65535), got {port:?}")
            })?;
        let agent_store = var("TORCHELASTIC_USE_AGENT_STORE")
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
        let run_id = var("TORCHELASTIC_RUN_ID").unwrap_or_else(|| "none".into());
        let restart = var("TORCHELASTIC_RESTART_COUNT").unwrap_or_else(|| "0".into());
        let prefix = format!("ae-tch/{run_id}/{restart}/");
        Ok(Some(Launch { rank, world, local_rank, master_addr, master_port, agent_store, prefix }))
    }

    /// The launch torchrun describes in this process's environment.
    pub fn from_env() -> Result<Option<Launch>> {
        Launch::from_vars(|name| std::env::var(name).ok())
    }
}

/// The rows `offset..offset + len` of a global batch of `len` rows that `rank` of `world`
/// computes: contiguous blocks, the first `len % world` ranks one row longer.
pub fn share(len: usize, rank: usize, world: usize) -> (usize, usize) {
    let (base, extra) = (len / world, len % world);
    (rank * base + rank.min(extra), base + usize::from(rank < extra))
}

/// Whether this build carries c10d's Gloo backend.
pub fn has_gloo() -> bool {
    imp::HAS_GLOO
}

/// Whether this build carries c10d's NCCL backend (GPUs).
pub fn has_nccl() -> bool {
    imp::HAS_GLOO && unsafe { imp::aet_dist_has_nccl() } != 0
}

/// This process's place in a data-parallel group, and the group.
pub struct Dist {
    pub rank: usize,
    pub world: usize,
    pub local_rank: usize,
    pub timeout: Duration,
    /// Where the exchanged tensors live: set by `start`.
    device: tch::Device,
    master: String,
    group: *mut c_void,
    /// Where a rank other than 0 writes the run files it does not keep.
    scratch: Option<tempfile::TempDir>,
}

// SAFETY: the group is used from the training thread only; the pointer is owned.
unsafe impl Send for Dist {}

impl Dist {
    /// Joins the group `launch` describes: connects to (or serves) the store and waits at
    /// most `timeout` for every rank to arrive. `start` then builds the process group.
    pub fn join(launch: &Launch, timeout: Duration) -> Result<Dist> {
        let Launch { rank, world, local_rank, .. } = *launch;
        let serve = !launch.agent_store && rank == 0;
        let addr = format!("{}:{}", launch.master_addr, launch.master_port);
        let host = c_string(&launch.master_addr)?;
        let prefix = c_string(&launch.prefix)?;
        let mut group = std::ptr::null_mut();
        let ms = timeout.as_millis().min(i32::MAX as u128) as c_int;
        imp::call(|| unsafe {
            imp::aet_dist_store(
                host.as_ptr(),
                launch.master_port as c_int,
                serve as c_int,
                world as c_int,
                ms,
                prefix.as_ptr(),
                &mut group,
            )
        })
        .with_context(|| {
            format!(
                "rank {rank}: cannot {} the rendezvous store at {addr} (MASTER_ADDR, MASTER_PORT)",
                if serve { "serve" } else { "reach" }
            )
        })?;
        let scratch = if rank == 0 {
            None
        } else {
            Some(tempfile::Builder::new().prefix("ae-tch-rank").tempdir()?)
        };
        let device = tch::Device::Cpu;
        let master = launch.master_addr.clone();
        let dist = Dist { rank, world, local_rank, timeout, device, master, group, scratch };
        dist.set(&format!("joined/{rank}"), "1")?;
        let deadline = Instant::now() + timeout;
        loop {
            let missing = dist.missing("joined")?;
            if missing.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let problem = format!(
                    "{} of {world} did not join within {} s ({{dist_timeout}}): was every rank \
                     started, with the same MASTER_ADDR:MASTER_PORT ({addr})?",
                    ranks_phrase(&missing),
                    timeout.as_secs_f64()
                );
                return Err(Invalid::plain(problem).into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(dist)
    }

    /// Builds the process group for tensors on `device`: Gloo on the CPU, NCCL on CUDA.
    pub fn start(&mut self, device: tch::Device) -> Result<()> {
        let (rank, world) = (self.rank as c_int, self.world as c_int);
        match device {
            tch::Device::Cuda(index) => {
                if !has_nccl() {
                    let problem = format!(
                        "data-parallel training on {device:?} needs c10d's NCCL backend, which \
                         this build lacks (the CUDA and NCCL headers were missing at build \
                         time: run scripts/setup.sh and rebuild), or pass {{device}} cpu"
                    );
                    return Err(Invalid::plain(problem).into());
                }
                imp::call(|| unsafe {
                    imp::aet_dist_group_nccl(self.group, rank, world, index as c_int)
                })
                .with_context(|| format!("rank {rank}: building the NCCL process group"))?;
            }
            _ => {
                let master = c_string(&self.master)?;
                imp::call(|| unsafe {
                    imp::aet_dist_group(self.group, master.as_ptr(), rank, world)
                })
                .with_context(|| format!("rank {rank}: building the Gloo process group"))?;
            }
        }
        self.device = device;
        Ok(())
    }

    /// The backend `start` chose.
    pub fn backend(&self) -> &'static str {
        if self.device.is_cuda() {
            "NCCL"
        } else {
            "Gloo"
        }
    }

    pub fn is_main(&self) -> bool {
        self.rank == 0
    }

    /// A private folder for the run files of a rank other than 0 (removed at exit).
    pub fn scratch(&self) -> Option<&std::path::Path> {
        self.scratch.as_ref().map(|d| d.path())
    }

    /// Checks that every rank runs with the same `fingerprint` (its settings and data).
    pub fn agree(&self, what: &str, fingerprint: &str) -> Result<()> {
        self.set(&format!("agree/{what}/{}", self.rank), fingerprint)?;
        let key = format!("agree/{what}/0");
        self.wait(&key)?;
        let first = self.get(&key)?;
        if first != fingerprint {
            bail!(
                "rank {}'s {what} differ from rank 0's ({fingerprint} against {first}): start \
                 every rank with the same flags and data (and name the precision on machines \
                 that differ: a conv network's default follows each CPU's bf16 support)",
                self.rank
            );
        }
        Ok(())
    }

    /// Sums `t` (a contiguous tensor on the group's device) over the ranks, in place. A
    /// failure names the ranks that are gone.
    pub fn all_sum(&self, t: &Tensor) -> Result<()> {
        let ptr = t.as_ptr() as *mut c_void;
        imp::call(|| unsafe { imp::aet_dist_allreduce(self.group, ptr) }).map_err(|e| self.lost(e))
    }

    /// Sums `values` over the ranks.
    pub fn all_sum_f64(&self, values: &mut [f64]) -> Result<()> {
        let t = Tensor::from_slice(values).to_device(self.device);
        self.all_sum(&t)?;
        t.to_device(tch::Device::Cpu).copy_data(values, values.len());
        Ok(())
    }

    /// Checks that the flat gradient can be exchanged as it is: contiguous f32 on the
    /// group's device.
    pub fn check_flat(&self, t: &Tensor) -> Result<()> {
        if t.kind() != Kind::Float || t.device() != self.device || !t.is_contiguous() {
            bail!("data-parallel training exchanges contiguous f32 gradients on {:?}", self.device);
        }
        Ok(())
    }

    /// Why a collective failed, with the ranks that did not report in after it.
    fn lost(&self, error: anyhow::Error) -> anyhow::Error {
        let reason = format!("{error:#}");
        // The survivors say so in the store; whoever stays silent is gone.
        let missing = self.set(&format!("down/{}", self.rank), "1").and_then(|()| {
            let deadline = Instant::now() + Duration::from_millis(1500).min(self.timeout);
            loop {
                let missing = self.missing("down")?;
                if missing.is_empty() || Instant::now() >= deadline {
                    return Ok(missing);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let who = match missing {
            Ok(m) if !m.is_empty() => format!("{} stopped or stopped answering", ranks_phrase(&m)),
            Ok(_) => "a rank stopped answering".into(),
            Err(_) => "the rendezvous store is gone too (rank 0 serves it when torchrun's \
                       agent does not): rank 0 stopped"
                .into(),
        };
        anyhow::Error::new(Invalid::plain(format!(
            "rank {} of {}: {who}; the exchange of gradients failed (limit {{dist_timeout}} {} \
             s): {reason}",
            self.rank,
            self.world,
            self.timeout.as_secs_f64()
        )))
    }

    /// The ranks whose `{what}/{rank}` key is not in the store.
    fn missing(&self, what: &str) -> Result<Vec<usize>> {
        let mut missing = Vec::new();
        for r in 0..self.world {
            let key = c_string(&format!("{what}/{r}"))?;
            let mut present: c_int = 0;
            imp::call(|| unsafe { imp::aet_dist_check(self.group, key.as_ptr(), &mut present) })
                .context("asking the rendezvous store")?;
            if present == 0 {
                missing.push(r);
            }
        }
        Ok(missing)
    }

    fn set(&self, key: &str, value: &str) -> Result<()> {
        let (k, v) = (c_string(key)?, c_string(value)?);
        imp::call(|| unsafe { imp::aet_dist_set(self.group, k.as_ptr(), v.as_ptr()) })
            .context("writing to the rendezvous store")
    }

    fn wait(&self, key: &str) -> Result<()> {
        let k = c_string(key)?;
        imp::call(|| unsafe { imp::aet_dist_wait(self.group, k.as_ptr()) })
            .with_context(|| format!("waiting for {key} in the rendezvous store"))
    }

    fn get(&self, key: &str) -> Result<String> {
        let k = c_string(key)?;
        let mut sink = String::new();
        extern "C" fn append(sink: *mut c_void, bytes: *const c_char, len: usize) {
            // SAFETY: the shim passes back the String given below and a buffer of `len`.
            let (sink, bytes) = unsafe {
                (&mut *(sink as *mut String), std::slice::from_raw_parts(bytes as *const u8, len))
            };
            sink.push_str(&String::from_utf8_lossy(bytes));
        }
        let out = &mut sink as *mut String as *mut c_void;
        imp::call(|| unsafe { imp::aet_dist_get(self.group, k.as_ptr(), append, out) })
            .with_context(|| format!("reading {key} from the rendezvous store"))?;
        Ok(sink)
    }

    /// Adds `delta` to the store counter `key`; the new value.
    pub fn add(&self, key: &str, delta: i64) -> Result<i64> {
        let k = c_string(key)?;
        let mut value: c_longlong = 0;
        imp::call(|| unsafe { imp::aet_dist_add(self.group, k.as_ptr(), delta, &mut value) })
            .context("counting in the rendezvous store")?;
        Ok(value)
    }
}

impl Drop for Dist {
    fn drop(&mut self) {
        unsafe { imp::aet_dist_free(self.group) }
    }
}

/// "rank 1" or "ranks 1, 3".
fn ranks_phrase(ranks: &[usize]) -> String {
    let list: Vec<String> = ranks.iter().map(|r| r.to_string()).collect();
    format!("rank{} {}", if ranks.len() == 1 { "" } else { "s" }, list.join(", "))
}

fn c_string(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow!("{s:?} holds a NUL byte"))
}

#[cfg(c10d)]
mod imp {
    use super::*;
    pub const HAS_GLOO: bool = true;

    pub type Sink = extern "C" fn(*mut c_void, *const c_char, usize);

    extern "C" {
        fn aet_dist_last_error() -> *const c_char;
        pub fn aet_dist_store(
            host: *const c_char,
            port: c_int,
            serve: c_int,
            world: c_int,
            timeout_ms: c_int,
            prefix: *const c_char,
            out: *mut *mut c_void,
        ) -> c_int;
        pub fn aet_dist_set(g: *mut c_void, key: *const c_char, value: *const c_char) -> c_int;
        pub fn aet_dist_get(
            g: *mut c_void,
            key: *const c_char,
            sink: Sink,
            out: *mut c_void,
        ) -> c_int;
        pub fn aet_dist_check(g: *mut c_void, key: *const c_char, present: *mut c_int) -> c_int;
        pub fn aet_dist_wait(g: *mut c_void, key: *const c_char) -> c_int;
        pub fn aet_dist_add(
            g: *mut c_void,
            key: *const c_char,
            delta: c_longlong,
            value: *mut c_longlong,
        ) -> c_int;
        pub fn aet_dist_group(
            g: *mut c_void,
            master: *const c_char,
            rank: c_int,
            world: c_int,
        ) -> c_int;
        pub fn aet_dist_group_nccl(
            g: *mut c_void,
            rank: c_int,
            world: c_int,
            device: c_int,
        ) -> c_int;
        pub fn aet_dist_has_nccl() -> c_int;
        pub fn aet_dist_allreduce(g: *mut c_void, t: *mut c_void) -> c_int;
        pub fn aet_dist_free(g: *mut c_void);
    }

    /// Runs a shim call; its message on failure.
    pub fn call(f: impl FnOnce() -> c_int) -> Result<()> {
        if f() == 0 {
            return Ok(());
        }
        // SAFETY: the shim returns its thread-local, NUL-terminated message.
        let msg = unsafe { CStr::from_ptr(aet_dist_last_error()) }.to_string_lossy().into_owned();
        // c10d's messages carry a C++ stack trace after the first line.
        let first = msg.lines().find(|l| !l.trim().is_empty()).unwrap_or("unknown error");
        bail!("{}", first.trim())
    }
}

#[cfg(not(c10d))]
mod imp {
    //! This build has no gloo headers: every call says how to get the backend.
    use super::*;
    pub const HAS_GLOO: bool = false;
    pub type Sink = extern "C" fn(*mut c_void, *const c_char, usize);
    const MISSING: &str = "this ae-tch was built without c10d's Gloo backend (the gloo \
                           headers were missing at build time): run scripts/setup.sh, then \
                           cargo build --release";
    pub fn call(_: impl FnOnce() -> c_int) -> Result<()> {
        bail!("{MISSING}")
    }
    pub unsafe fn aet_dist_store(
        _: *const c_char,
        _: c_int,
        _: c_int,
        _: c_int,
        _: c_int,
        _: *const c_char,
        _: *mut *mut c_void,
    ) -> c_int {
        1
    }
    pub unsafe fn aet_dist_set(_: *mut c_void, _: *const c_char, _: *const c_char) -> c_int {
        1
    }
    pub unsafe fn aet_dist_get(_: *mut c_void, _: *const c_char, _: Sink, _: *mut c_void) -> c_int {
        1
    }
    pub unsafe fn aet_dist_check(_: *mut c_void, _: *const c_char, _: *mut c_int) -> c_int {
        1
    }
    pub unsafe fn aet_dist_wait(_: *mut c_void, _: *const c_char) -> c_int {
        1
    }
    pub unsafe fn aet_dist_add(
        _: *mut c_void,
        _: *const c_char,
        _: c_longlong,
        _: *mut c_longlong,
    ) -> c_int {
        1
    }
    pub unsafe fn aet_dist_group(_: *mut c_void, _: *const c_char, _: c_int, _: c_int) -> c_int {
        1
    }
    pub unsafe fn aet_dist_allreduce(_: *mut c_void, _: *mut c_void) -> c_int {
        1
    }
    pub unsafe fn aet_dist_group_nccl(_: *mut c_void, _: c_int, _: c_int, _: c_int) -> c_int {
        1
    }
    pub unsafe fn aet_dist_has_nccl() -> c_int {
        0
    }
    pub unsafe fn aet_dist_free(_: *mut c_void) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn shares_cover_the_batch_in_order_and_differ_by_at_most_one_row() {
        for (len, world) in [(128, 2), (127, 2), (5, 3), (2, 4), (0, 2), (128, 1)] {
            let parts: Vec<(usize, usize)> = (0..world).map(|r| share(len, r, world)).collect();
            let mut next = 0;
            for &(offset, n) in &parts {
                assert_eq!(offset, next, "{len} rows over {world}: {parts:?}");
                next += n;
            }
            assert_eq!(next, len);
            let (lo, hi) = (parts.iter().map(|p| p.1).min(), parts.iter().map(|p| p.1).max());
            assert!(hi.unwrap() - lo.unwrap() <= 1, "{parts:?}");
        }
    }

    fn launch(vars: &[(&str, &str)]) -> Result<Option<Launch>> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Launch::from_vars(|name| map.get(name).cloned())
    }

    #[test]
    fn torchrun_variables_are_read_and_checked() {
        assert_eq!(launch(&[]).unwrap(), None, "a plain run");
        let full = [
            ("RANK", "1"),
            ("WORLD_SIZE", "2"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "127.0.0.1"),
            ("MASTER_PORT", "29500"),
            ("TORCHELASTIC_USE_AGENT_STORE", "True"),
            ("TORCHELASTIC_RUN_ID", "abc"),
            ("TORCHELASTIC_RESTART_COUNT", "2"),
        ];
        let l = launch(&full).unwrap().unwrap();
        assert_eq!((l.rank, l.world, l.local_rank, l.master_port), (1, 2, 1, 29500));
        assert!(l.agent_store);
        assert_eq!(l.prefix, "ae-tch/abc/2/");
        let without = |name: &str| -> Vec<(&str, &str)> {
            full.iter().copied().filter(|(k, _)| *k != name).collect()
        };
        let err = launch(&without("MASTER_PORT")).unwrap_err().to_string();
        assert!(err.contains("MASTER_PORT is not set") && err.contains("torchrun"), "{err}");
        let mut bad = without("RANK");
        bad.push(("RANK", "2"));
        let err = launch(&bad).unwrap_err().to_string();
        assert!(err.contains("RANK 2 is not below WORLD_SIZE 2"), "{err}");
        let mut bad = without("MASTER_PORT");
        bad.push(("MASTER_PORT", "http"));
        assert!(launch(&bad).unwrap_err().to_string().contains("MASTER_PORT must be a port"));
        let l = launch(&without("TORCHELASTIC_USE_AGENT_STORE")).unwrap().unwrap();
        assert!(!l.agent_store, "rank 0 serves the store without the agent");
    }
}
