//! Direct access to the memory of CPU tensors, for the few loops that are faster as one
//! pass in Rust than as a chain of libtorch operations (batch assembly, the Adam update).

use tch::{Device, Kind, Tensor};

/// Whether `t` can be viewed as a host slice of `kind`.
pub fn is_host(t: &Tensor, kind: Kind) -> bool {
    t.device() == Device::Cpu && t.kind() == kind && t.is_contiguous()
}

/// The elements of a contiguous f32 CPU tensor as a mutable slice.
///
/// # Safety
/// While the slice lives, nothing else may read or write the tensor's storage (through
/// any handle, including views and shallow clones): libtorch does not know about the
/// borrow.
// The memory is libtorch's storage, not something borrowed from the handle.
#[allow(clippy::mut_from_ref)]
pub unsafe fn f32_mut(t: &Tensor) -> &mut [f32] {
    assert!(is_host(t, Kind::Float), "f32_mut needs a contiguous f32 CPU tensor");
    let n = t.numel();
    if n == 0 {
        return &mut [];
    }
    std::slice::from_raw_parts_mut(t.data_ptr() as *mut f32, n)
}

/// The elements of a contiguous u8 CPU tensor.
///
/// # Safety
/// While the slice lives, nothing may write the tensor's storage.
pub unsafe fn u8_ref(t: &Tensor) -> &[u8] {
    assert!(is_host(t, Kind::Uint8), "u8_ref needs a contiguous u8 CPU tensor");
    let n = t.numel();
    if n == 0 {
        return &[];
    }
    std::slice::from_raw_parts(t.data_ptr() as *const u8, n)
}
