//! Three host calls made without the SDK's wrappers. The SDK turns a status it does not expect
//! into a panic, which traps the VM (Envoy answers `set_property` with `NotFound` outside a
//! stream), reads the log level into an enum that has no value for "off", and copies every
//! header of a map into its own `String` and `Vec`; these read and answer in place
//! ([`crate::pairs`] reads the map).

use std::ptr::null_mut;

use crate::pairs::HeaderMap;

/// `proxy_map_type` of the request headers.
const REQUEST_HEADERS: u32 = 0;
/// `proxy_status` success.
const OK: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_set_property(path: *const u8, path_size: usize, value: *const u8, size: usize) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
}

/// The request headers of the effective stream, in one host call (empty if the host has none).
pub fn request_headers() -> HeaderMap {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes at most one pointer and one size through these two pointers, which
    // are valid for those writes.
    let status = unsafe { proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size) };
    if status != OK || data.is_null() {
        return HeaderMap::new(Vec::new());
    }
    // SAFETY: the host allocated the `size` bytes at `data` through this module's exported
    // `proxy_on_memory_allocate` (the SDK's: a `Vec<u8>` with capacity `size`, forgotten) and
    // filled them; rebuilding that `Vec` gives the allocation back to its owner, as the SDK
    // does for every buffer the host returns.
    let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
    HeaderMap::new(bytes)
}

/// Set a property of the effective stream (Envoy: filter state `wasm.<path>`). `false` when
/// the host refused it.
pub fn set_property(path: &[u8], value: &[u8]) -> bool {
    // SAFETY: both pointer and length pairs describe live slices for the whole call; the host
    // only reads them.
    let status =
        unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
    status == OK
}

/// Whether Envoy's `wasm` logger lets info lines through (spdlog levels: 0 trace … 2 info …
/// 6 off). When the host cannot say, assume it does.
pub fn info_logged() -> bool {
    let mut level: u32 = 2;
    // SAFETY: the host writes one u32 through the pointer, which is valid for that write.
    let status = unsafe { proxy_get_log_level(&mut level) };
    status != OK || level <= 2
}
