//! TorchScript modules written from Rust: one module carrying several traced methods
//! (`forward`, `encode`, `decode`) and string attributes, serialised by libtorch's own
//! writer, so `torch.jit.load` (Python) and `torch::jit::load` (C++) read it without the
//! model's code. Tracing records the libtorch operations a closure runs on example inputs;
//! the weights become constants of the traced graphs. The C++ side is csrc/script.cpp,
//! compiled by build.rs.

use anyhow::{bail, Result};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use tch::Tensor;
use torch_sys::C_tensor;

extern "C" {
    fn aet_last_error() -> *const c_char;
    fn aet_module_new(name: *const c_char, out: *mut *mut c_void) -> c_int;
    fn aet_module_free(m: *mut c_void);
    fn aet_trace_begin(m: *mut c_void, inputs: *const *mut C_tensor, n: c_int) -> c_int;
    fn aet_trace_end(
        m: *mut c_void,
        name: *const c_char,
        outputs: *const *mut C_tensor,
        n: c_int,
    ) -> c_int;
    fn aet_trace_abandon();
    fn aet_module_set_string(m: *mut c_void, name: *const c_char, value: *const c_char) -> c_int;
    fn aet_module_save(
        m: *mut c_void,
        sink: extern "C" fn(*mut c_void, *const c_char, usize),
        ctx: *mut c_void,
    ) -> c_int;
}

/// The shim's result: Ok, or its last error message.
fn check(code: c_int, what: &str) -> Result<()> {
    if code == 0 {
        return Ok(());
    }
    // SAFETY: the shim returns a pointer to its thread-local, NUL-terminated message.
    let msg = unsafe { CStr::from_ptr(aet_last_error()) }.to_string_lossy().into_owned();
    bail!("TorchScript: {what}: {msg}")
}

fn c_string(s: &str) -> Result<CString> {
    Ok(CString::new(s)?)
}

/// A TorchScript module under construction.
pub struct ScriptModule {
    ptr: *mut c_void,
}

impl ScriptModule {
    pub fn new(name: &str) -> Result<ScriptModule> {
        let name = c_string(name)?;
        let mut ptr = std::ptr::null_mut();
        // SAFETY: `name` outlives the call; the shim writes the new module's pointer.
        check(unsafe { aet_module_new(name.as_ptr(), &mut ptr) }, "creating a module")?;
        Ok(ScriptModule { ptr })
    }

    /// Adds the method `name`: what `f` computes from `inputs`, traced. `f` must use only
    /// libtorch operations on its inputs (no host round trips, no branches on values).
    pub fn trace(
        &mut self,
        name: &str,
        inputs: &[Tensor],
        f: impl FnOnce(&[Tensor]) -> Vec<Tensor>,
    ) -> Result<()> {
        let c_name = c_string(name)?;
        let ins: Vec<*mut C_tensor> = inputs.iter().map(|t| t.as_ptr() as *mut C_tensor).collect();
        // SAFETY: the module and the input tensors are alive for the call.
        let begin = unsafe { aet_trace_begin(self.ptr, ins.as_ptr(), ins.len() as c_int) };
        check(begin, &format!("tracing {name}"))?;
        let outputs = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(inputs)));
        let Ok(outputs) = outputs else {
            // SAFETY: a trace was begun on this thread.
            unsafe { aet_trace_abandon() };
            bail!("TorchScript: tracing {name} failed");
        };
        let outs: Vec<*mut C_tensor> =
            outputs.iter().map(|t| t.as_ptr() as *mut C_tensor).collect();
        // SAFETY: the module and the output tensors are alive for the call.
        let end =
            unsafe { aet_trace_end(self.ptr, c_name.as_ptr(), outs.as_ptr(), outs.len() as c_int) };
        check(end, &format!("tracing {name}"))
    }

    /// A string attribute of the module (`module.<name>` in Python).
    pub fn set_string(&mut self, name: &str, value: &str) -> Result<()> {
        let (name_c, value_c) = (c_string(name)?, c_string(value)?);
        // SAFETY: both strings outlive the call.
        let code = unsafe { aet_module_set_string(self.ptr, name_c.as_ptr(), value_c.as_ptr()) };
        check(code, &format!("setting {name}"))
    }

    /// The module as a TorchScript archive (torch.jit.save's format).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        extern "C" fn sink(ctx: *mut c_void, bytes: *const c_char, len: usize) {
            // SAFETY: `ctx` is the Vec below, `bytes` `len` valid bytes for this call.
            unsafe {
                let out = &mut *(ctx as *mut Vec<u8>);
                out.extend_from_slice(std::slice::from_raw_parts(bytes as *const u8, len));
            }
        }
        let mut out: Vec<u8> = Vec::new();
        // SAFETY: `out` lives across the call, which invokes `sink` synchronously.
        let code =
            unsafe { aet_module_save(self.ptr, sink, &mut out as *mut Vec<u8> as *mut c_void) };
        check(code, "serialising")?;
        Ok(out)
    }
}

impl Drop for ScriptModule {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from aet_module_new and is freed once.
        unsafe { aet_module_free(self.ptr) }
    }
}
