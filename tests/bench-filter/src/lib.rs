//! The floor of `scripts/bench-proxy.sh`: what any Rust proxy-wasm filter that looks at a bearer
//! token costs under Envoy's V8, with nothing decided. Per request it makes one host call (the
//! `authorization` value) and continues; the SDK's context dispatch is the same as the real
//! filter's. Built for `wasm32-wasip1` only (`scripts/build-proxy.sh --with-bench-filter`);
//! natively this crate is empty.
//!
//! For measuring what single host calls cost under V8 (`bench.py --probes`), the plugin
//! configuration may name more work per request, comma-separated: `map` (also read the whole
//! request header map, read in place as the filter reads it), `singles` (also read `:method` and
//! `:path`, one call each), `set_property` (a 200-byte filter state value), `add_header`, `log` (a
//! 200-byte info line), and `x<N>` to do that extra work N times per request (so that its price
//! stands out of the noise); `spin<N>` runs N rounds of a xorshift (about 10 wasm instructions
//! each, in a few bytes of code and no memory). With an empty configuration it does exactly the one
//! read. `as_filter` makes that one read the whole header map instead, as the tokengate filter
//! reads its headers (with `set_property` and `add_header`: the host calls of its warm request).

#[cfg(target_arch = "wasm32")]
mod filter {
    use std::cell::Cell;
    use std::rc::Rc;

    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(Root { work: Rc::new(Cell::new(Work::default())) })
        });
    }}

    /// What each request does, from the plugin configuration.
    #[derive(Clone, Copy, Default)]
    struct Work {
        /// `as_filter`: read the map instead of `authorization`, as tokengate does.
        as_filter: bool,
        map: bool,
        singles: bool,
        set_property: bool,
        add_header: bool,
        log: bool,
        times: u32,
        spin: u32,
    }

    struct Root {
        work: Rc<Cell<Work>>,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, _size: usize) -> bool {
            let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
                .ok()
                .flatten()
                .unwrap_or_default();
            let config = String::from_utf8_lossy(&config);
            let has = |name: &str| config.split(',').any(|w| w.trim() == name);
            self.work.set(Work {
                as_filter: has("as_filter"),
                map: has("map"),
                singles: has("singles"),
                set_property: has("set_property"),
                add_header: has("add_header"),
                log: has("log"),
                times: config
                    .split(',')
                    .find_map(|w| w.trim().strip_prefix('x')?.parse().ok())
                    .unwrap_or(1),
                spin: config
                    .split(',')
                    .find_map(|w| w.trim().strip_prefix("spin")?.parse().ok())
                    .unwrap_or(0),
            });
            true
        }

        fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(ReadAuthorization {
                work: self.work.get(),
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct ReadAuthorization {
        work: Work,
    }

    impl Context for ReadAuthorization {}

    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_pairs(map_type: u32, data: *mut *mut u8, size: *mut usize) -> u32;
        fn proxy_set_property(
            path: *const u8,
            path_size: usize,
            value: *const u8,
            size: usize,
        ) -> u32;
    }

    /// The request header map in one host call, read in place and dropped, as the filter reads
    /// it (the SDK's `get_map_bytes` would also copy every pair into a `String` and a `Vec`).
    fn read_header_map() {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size: usize = 0;
        // SAFETY: the host writes one pointer and one size through these valid pointers.
        let status = unsafe { proxy_get_header_map_pairs(0, &mut data, &mut size) };
        if status == 0 && !data.is_null() {
            // SAFETY: the host allocated `size` bytes at `data` through this module's
            // `proxy_on_memory_allocate` (a `Vec<u8>` of that capacity, forgotten) and filled
            // them: rebuilding the `Vec` hands the allocation back to its owner.
            let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
            std::hint::black_box(bytes);
        }
    }

    /// Filter state `wasm.<path>`, as the filter writes its audit record (the SDK's
    /// `set_property` would also serialise the path into a new buffer).
    fn set_property(path: &[u8], value: &[u8]) {
        // SAFETY: both pointer and length pairs describe live slices the host only reads.
        let _ =
            unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) };
    }

    const RECORD: &str = r#"{"decision":"allow","status":200,"route":"rules[0]","client_id":"bench-3","scopes":"orders/read","iss":"https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_TEST0pool","cached":true}"#;

    impl HttpContext for ReadAuthorization {
        fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
            let w = self.work;
            // A host call cannot be optimised away: the values are fetched and dropped.
            if w.as_filter {
                read_header_map();
            } else {
                let _ = self.get_http_request_header_bytes("authorization");
            }
            for _ in 0..w.times {
                if w.map {
                    read_header_map();
                }
                if w.singles {
                    for name in [":method", ":path"] {
                        let _ = self.get_http_request_header_bytes(name);
                    }
                }
                if w.set_property {
                    set_property(b"bench", RECORD.as_bytes());
                }
                if w.add_header {
                    self.add_http_request_header("x-bench-client-id", "bench-3");
                }
                if w.log {
                    let _ = hostcalls::log(LogLevel::Info, RECORD);
                }
            }
            if w.spin > 0 {
                // Compute with almost no code or memory: the price of wasm instructions alone.
                let mut x = std::hint::black_box(0x9E37_79B9_7F4A_7C15u64);
                for _ in 0..w.spin {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                }
                std::hint::black_box(x);
            }
            Action::Continue
        }
    }
}
