//! A small proxy-wasm host (ABI 0.2.1) on wasmtime 48: enough of what Envoy does to drive the
//! built tokengate filter `.wasm` through request scenarios, with a pinned clock, shared data
//! across several VMs (Envoy workers), metrics, logs, properties and HTTP callouts that the test
//! answers by hand.
//!
//! ```text
//! Env (clock, shared data, metrics, logs)  ──┬── Vm (one worker: instance, root context, streams)
//!                                            └── Vm …
//! ```

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::{Caller, Engine, Extern, Instance, Linker, Memory, Module, Store, TypedFunc};

pub use wasmtime::Error;
/// Results of host operations.
pub type Result<T> = std::result::Result<T, Error>;

/// ABI status codes.
const OK: i32 = 0;
const NOT_FOUND: i32 = 1;
const BAD_ARGUMENT: i32 = 2;
const CAS_MISMATCH: i32 = 8;

/// Map types (ABI 0.2.1).
const REQUEST_HEADERS: i32 = 0;
const CALL_RESPONSE_HEADERS: i32 = 6;
/// Buffer types.
const CALL_RESPONSE_BODY: i32 = 4;
const VM_CONFIGURATION: i32 = 6;
const PLUGIN_CONFIGURATION: i32 = 7;

/// The compiled filter. Compile once, instantiate many times.
#[derive(Clone)]
pub struct Filter {
    engine: Engine,
    module: Module,
    path: PathBuf,
    metered: bool,
}

impl Filter {
    /// Compile the `.wasm` at `path`.
    ///
    /// # Errors
    /// If the file cannot be read or compiled.
    pub fn load(path: &Path) -> Result<Filter> {
        Filter::compile(path, false)
    }

    /// [`Filter::load`], counting every wasm instruction the filter runs (wasmtime fuel: one
    /// unit per operator): a measure of its work that no other load on the machine changes,
    /// read with [`Vm::wasm_instructions`]. Runs somewhat slower.
    ///
    /// # Errors
    /// If the file cannot be read or compiled.
    pub fn load_metered(path: &Path) -> Result<Filter> {
        Filter::compile(path, true)
    }

    fn compile(path: &Path, metered: bool) -> Result<Filter> {
        let mut config = wasmtime::Config::new();
        config.consume_fuel(metered);
        // For `perf record` on a test or example: /tmp/perf-<pid>.map names the filter's
        // functions (build without wasm-opt's --strip-debug to keep the name section).
        if std::env::var_os("TOKENGATE_PROXY_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let module = Module::from_file(&engine, path)?;
        Ok(Filter {
            engine,
            module,
            path: path.to_owned(),
            metered,
        })
    }

    /// The filter the build script produced: `$TOKENGATE_PROXY_WASM`, else the optimised
    /// `target/tokengate_proxy.opt.wasm`, else the plain release build.
    pub fn default_path() -> PathBuf {
        if let Some(p) = std::env::var_os("TOKENGATE_PROXY_WASM") {
            return PathBuf::from(p);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let opt = root.join("target/tokengate_proxy.opt.wasm");
        if opt.exists() {
            return opt;
        }
        root.join("target/wasm32-wasip1/release/tokengate_proxy.wasm")
    }

    /// Where the module came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `(module, name)` of every import.
    pub fn imports(&self) -> Vec<(String, String)> {
        self.module
            .imports()
            .map(|i| (i.module().to_owned(), i.name().to_owned()))
            .collect()
    }
}

/// One log line.
#[derive(Clone, Debug)]
pub struct LogLine {
    /// proxy-wasm level: 0 trace … 5 critical.
    pub level: i32,
    /// Which VM wrote it.
    pub vm: usize,
    /// The message.
    pub message: String,
}

/// One `proxy_set_property` call, as Envoy stores it: filter state under `wasm.` + the path
/// (segments joined with `\0`), on the effective stream.
#[derive(Clone, Debug)]
pub struct FilterState {
    /// Which VM set it.
    pub vm: usize,
    /// The stream (context id) it was set on.
    pub context_id: u32,
    /// The filter state key (`wasm.tokengate`).
    pub key: String,
    /// The value.
    pub value: Vec<u8>,
}

/// How many times each host function was called (by import name), plus
/// `proxy_on_memory_allocate`: the host calling into the guest to hand data back, which costs
/// about as much as a host call under V8.
pub type HostCalls = BTreeMap<&'static str, u64>;

/// A foreign function this host serves: the arguments in, the result bytes or an ABI status out.
pub type ForeignFunction = Arc<dyn Fn(&[u8]) -> std::result::Result<Vec<u8>, i32> + Send + Sync>;

#[derive(Default)]
struct EnvState {
    foreign: HashMap<String, ForeignFunction>,
    now_ns: u64,
    shared: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    metrics: BTreeMap<String, i64>,
    logs: Vec<LogLine>,
    filter_states: Vec<FilterState>,
    log_level: i32,
    vms: usize,
}

/// What several VMs share: the clock, shared data, metrics and logs (like one Envoy process).
#[derive(Clone, Default)]
pub struct Env {
    state: Arc<Mutex<EnvState>>,
}

impl Env {
    /// A new process with its clock at `now_s`.
    pub fn at(now_s: u64) -> Env {
        let env = Env::default();
        env.lock().now_ns = now_s.saturating_mul(1_000_000_000);
        env.lock().log_level = 1;
        env
    }

    /// The level `proxy_get_log_level` reports (0 trace … 5 critical, 6 off, as Envoy's spdlog
    /// levels); 1 (debug) unless set.
    pub fn set_log_level(&self, level: i32) {
        self.lock().log_level = level;
    }

    /// Serve `proxy_call_foreign_function(name, …)` with `f` (unserved names answer
    /// `NotFound`, as Envoy does for a function it does not register).
    pub fn set_foreign_function(
        &self,
        name: &str,
        f: impl Fn(&[u8]) -> std::result::Result<Vec<u8>, i32> + Send + Sync + 'static,
    ) {
        self.lock().foreign.insert(name.to_string(), Arc::new(f));
    }

    /// Every filter state value set so far, in order.
    pub fn filter_states(&self) -> Vec<FilterState> {
        self.lock().filter_states.clone()
    }

    /// Forget the filter state values so far.
    pub fn clear_filter_states(&self) {
        self.lock().filter_states.clear();
    }

    fn lock(&self) -> MutexGuard<'_, EnvState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Set the clock (seconds).
    pub fn set_time(&self, now_s: u64) {
        self.lock().now_ns = now_s.saturating_mul(1_000_000_000);
    }

    /// Advance the clock.
    pub fn advance_ms(&self, ms: u64) {
        let mut s = self.lock();
        s.now_ns = s.now_ns.saturating_add(ms.saturating_mul(1_000_000));
    }

    /// The clock in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.lock().now_ns / 1_000_000
    }

    /// A counter's value by full name (0 when never incremented).
    pub fn metric(&self, name: &str) -> i64 {
        self.lock().metrics.get(name).copied().unwrap_or(0)
    }

    /// All metrics.
    pub fn metrics(&self) -> BTreeMap<String, i64> {
        self.lock().metrics.clone()
    }

    /// All log lines so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.lock().logs.clone()
    }

    /// Forget the log lines so far.
    pub fn clear_logs(&self) {
        self.lock().logs.clear();
    }

    /// A shared-data value.
    pub fn shared(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().shared.get(key).map(|(v, _)| v.clone())
    }

    /// Start a VM (an Envoy worker) with this plugin configuration: instantiate, create the
    /// root context, `on_vm_start`, `on_configure`.
    ///
    /// # Errors
    /// [`Start::Refused`] when `on_configure` returns false (with the log lines of that VM),
    /// [`Start::Trap`] on a trap or a host error.
    pub fn vm(&self, filter: &Filter, plugin_config: &str) -> std::result::Result<Vm, Start> {
        Vm::start(self.clone(), filter, plugin_config.as_bytes()).map_err(Start::Trap)?
    }
}

/// Why a VM did not start.
#[derive(Debug)]
pub enum Start {
    /// `on_configure` said no. The VM's log lines.
    Refused(Vec<String>),
    /// The module trapped or the host failed.
    Trap(Error),
}

/// A request as the filter sees it.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Headers in order, pseudo-headers included.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Properties by path segments joined with `\0` (e.g. `connection\0sha256_peer_certificate_digest`).
    pub properties: HashMap<String, Vec<u8>>,
}

impl Request {
    /// `method` on `path`.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            headers: vec![
                (":method".into(), method.as_bytes().to_vec()),
                (":path".into(), path.as_bytes().to_vec()),
                (":authority".into(), b"api.test".to_vec()),
            ],
            properties: HashMap::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// Add a header (raw bytes allowed).
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Request {
        self.headers
            .push((name.to_ascii_lowercase(), value.as_ref().to_vec()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Request {
        self.header("authorization", format!("Bearer {token}"))
    }

    /// The connection presented a client certificate with this SHA-256 (lower-case hex), as
    /// Envoy's `connection.sha256_peer_certificate_digest`.
    pub fn peer_certificate_sha256(self, hex: &str) -> Request {
        self.property(&["connection", "sha256_peer_certificate_digest"], hex)
    }

    /// The connection presented a client certificate, told as Envoy's connection properties
    /// tell it: `connection.sha256_peer_certificate_digest` (lower-case hex),
    /// `subject_peer_certificate`, and `uri_san_peer_certificate` / `dns_san_peer_certificate`,
    /// which hold only the **first** URI and DNS subjectAltName (Envoy exposes no others; later
    /// SANs are not handed over). A `None` or empty list leaves the property out.
    pub fn peer_certificate(
        mut self,
        sha256_hex: Option<&str>,
        subject: Option<&str>,
        uri_sans: &[&str],
        dns_sans: &[&str],
    ) -> Request {
        let facts = [
            ("sha256_peer_certificate_digest", sha256_hex),
            ("subject_peer_certificate", subject),
            ("uri_san_peer_certificate", uri_sans.first().copied()),
            ("dns_san_peer_certificate", dns_sans.first().copied()),
        ];
        for (name, value) in facts {
            if let Some(v) = value {
                self = self.property(&["connection", name], v);
            }
        }
        self
    }

    /// Set a property (its path segments) to `value`.
    pub fn property(mut self, path: &[&str], value: impl AsRef<[u8]>) -> Request {
        self.properties
            .insert(path.join("\0"), value.as_ref().to_vec());
        self
    }
}

/// Where a request stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// Forwarded upstream with these request headers.
    Forwarded(Vec<(String, Vec<u8>)>),
    /// Answered by the filter.
    Local {
        /// HTTP status.
        status: u32,
        /// Response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: String,
    },
    /// Paused by the filter.
    Paused,
}

impl Response {
    /// The local reply status, or 200 for a forwarded request, 0 while paused.
    pub fn status(&self) -> u32 {
        match self {
            Response::Forwarded(_) => 200,
            Response::Local { status, .. } => *status,
            Response::Paused => 0,
        }
    }

    /// A header of the local reply, or of the forwarded request.
    pub fn header(&self, name: &str) -> Option<String> {
        match self {
            Response::Forwarded(h) => h
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned()),
            Response::Local { headers, .. } => headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone()),
            Response::Paused => None,
        }
    }

    /// The `error` member of a local reply body.
    pub fn error_code(&self) -> Option<String> {
        let Response::Local { body, .. } = self else {
            return None;
        };
        let start = body.find("\"error\":\"")? + 9;
        let rest = body.get(start..)?;
        Some(rest.get(..rest.find('"')?)?.to_owned())
    }
}

/// An HTTP callout the filter started and the test must answer.
#[derive(Clone, Debug)]
pub struct Callout {
    /// Token to answer with.
    pub token: u32,
    /// Target cluster.
    pub cluster: String,
    /// Request headers (`:path`, `:authority`, …).
    pub headers: Vec<(String, String)>,
    /// Timeout asked for.
    pub timeout_ms: u32,
}

impl Callout {
    /// A request header of the callout.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A local reply: status, headers, body.
type LocalReply = (u32, Vec<(String, String)>, String);

#[derive(Default)]
struct Stream {
    headers: Vec<(String, Vec<u8>)>,
    properties: HashMap<String, Vec<u8>>,
    reply: Option<LocalReply>,
    resumed: bool,
    paused: bool,
}

struct CallResponse {
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

struct HostState {
    env: Env,
    vm: usize,
    root_id: u32,
    effective: u32,
    plugin_config: Vec<u8>,
    streams: BTreeMap<u32, Stream>,
    calls: Vec<Callout>,
    next_token: u32,
    call_response: Option<CallResponse>,
    tick_ms: u32,
    metric_names: Vec<String>,
    random: u64,
    stdout: Vec<u8>,
    host_calls: HostCalls,
}

/// One VM (one Envoy worker) running the filter.
pub struct Vm {
    store: Store<HostState>,
    instance: Instance,
    next_context: u32,
    root_id: u32,
}

impl Vm {
    fn start(env: Env, filter: &Filter, config: &[u8]) -> Result<std::result::Result<Vm, Start>> {
        let vm_index = {
            let mut s = env.lock();
            s.vms += 1;
            s.vms
        };
        let state = HostState {
            env: env.clone(),
            vm: vm_index,
            root_id: 1,
            effective: 1,
            plugin_config: config.to_vec(),
            streams: BTreeMap::new(),
            calls: Vec::new(),
            next_token: 1,
            call_response: None,
            tick_ms: 0,
            metric_names: Vec::new(),
            random: 0x2545_F491_4F6C_DD1D ^ vm_index as u64,
            stdout: Vec::new(),
            host_calls: HostCalls::new(),
        };
        let mut store = Store::new(&filter.engine, state);
        if filter.metered {
            store.set_fuel(u64::MAX)?;
        }
        let mut linker = Linker::new(&filter.engine);
        define_abi(&mut linker)?;
        define_wasi(&mut linker)?;
        // Imports the filter links but this host does not serve (gRPC, queues): a call traps,
        // so a test notices if the filter ever starts using one. Foreign functions answer
        // NotFound unless a test serves them (`Env::set_foreign_function`).
        linker.define_unknown_imports_as_traps(&filter.module)?;
        let instance = linker.instantiate(&mut store, &filter.module)?;
        if let Some(init) = instance.get_func(&mut store, "_initialize") {
            init.typed::<(), ()>(&store)?.call(&mut store, ())?;
        }
        let mut vm = Vm {
            store,
            instance,
            next_context: 2,
            root_id: 1,
        };
        vm.call::<(i32, i32), ()>("proxy_on_context_create", (1, 0))?;
        let ok = vm.call::<(i32, i32), i32>("proxy_on_vm_start", (1, 0))?;
        if ok == 0 {
            return Ok(Err(Start::Refused(vm.own_logs())));
        }
        let ok = vm.call::<(i32, i32), i32>("proxy_on_configure", (1, config.len() as i32))?;
        if ok == 0 {
            return Ok(Err(Start::Refused(vm.own_logs())));
        }
        Ok(Ok(vm))
    }

    fn own_logs(&self) -> Vec<String> {
        let me = self.store.data().vm;
        self.store
            .data()
            .env
            .logs()
            .into_iter()
            .filter(|l| l.vm == me)
            .map(|l| l.message)
            .collect()
    }

    fn call<P: wasmtime::WasmParams, R: wasmtime::WasmResults>(
        &mut self,
        name: &str,
        params: P,
    ) -> Result<R> {
        let f: TypedFunc<P, R> = self.instance.get_typed_func(&mut self.store, name)?;
        f.call(&mut self.store, params)
    }

    /// The tick period the filter asked for (ms, 0 = none).
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_ms
    }

    /// Fire `on_tick` on the root context.
    ///
    /// # Errors
    /// On a trap.
    pub fn tick(&mut self) -> Result<()> {
        self.store.data_mut().effective = self.root_id;
        self.call::<i32, ()>("proxy_on_tick", self.root_id as i32)
    }

    /// Move the shared clock forward and fire `on_tick` once, as Envoy's timer would have done
    /// meanwhile (the filter reads the time on ticks and callouts, not per request).
    ///
    /// # Errors
    /// On a trap.
    pub fn advance_ms(&mut self, ms: u64) -> Result<()> {
        self.store.data().env.advance_ms(ms);
        self.tick()
    }

    /// Set the shared clock (seconds) and fire `on_tick` once.
    ///
    /// # Errors
    /// On a trap.
    pub fn set_time(&mut self, now_s: u64) -> Result<()> {
        self.store.data().env.set_time(now_s);
        self.tick()
    }

    /// Send request headers through the filter; returns the stream's context id.
    ///
    /// # Errors
    /// On a trap.
    pub fn send(&mut self, req: Request) -> Result<u32> {
        let id = self.next_context;
        self.next_context += 1;
        let count = req.headers.len() as i32;
        self.store.data_mut().streams.insert(
            id,
            Stream {
                headers: req.headers,
                properties: req.properties,
                ..Stream::default()
            },
        );
        self.call::<(i32, i32), ()>("proxy_on_context_create", (id as i32, self.root_id as i32))?;
        self.store.data_mut().effective = id;
        let action =
            self.call::<(i32, i32, i32), i32>("proxy_on_request_headers", (id as i32, count, 1))?;
        self.store.data_mut().effective = self.root_id;
        if let Some(s) = self.store.data_mut().streams.get_mut(&id) {
            s.paused = action != 0;
        }
        Ok(id)
    }

    /// Where stream `id` stands now.
    pub fn response(&self, id: u32) -> Response {
        match self.store.data().streams.get(&id) {
            None => Response::Paused,
            Some(s) => match &s.reply {
                Some((status, headers, body)) => Response::Local {
                    status: *status,
                    headers: headers.clone(),
                    body: body.clone(),
                },
                None if !s.paused || s.resumed => Response::Forwarded(s.headers.clone()),
                None => Response::Paused,
            },
        }
    }

    /// Send a request and end its stream; the final response (or `Paused`).
    ///
    /// # Errors
    /// On a trap.
    pub fn request(&mut self, req: Request) -> Result<Response> {
        let id = self.send(req)?;
        let r = self.response(id);
        if r != Response::Paused {
            self.end(id)?;
        }
        Ok(r)
    }

    /// End a stream (`on_done`, `on_log`, `on_delete`), as when the client goes away.
    ///
    /// # Errors
    /// On a trap.
    pub fn end(&mut self, id: u32) -> Result<()> {
        self.store.data_mut().effective = id;
        self.call::<i32, i32>("proxy_on_done", id as i32)?;
        self.call::<i32, ()>("proxy_on_log", id as i32)?;
        self.call::<i32, ()>("proxy_on_delete", id as i32)?;
        self.store.data_mut().streams.remove(&id);
        self.store.data_mut().effective = self.root_id;
        Ok(())
    }

    /// Callouts started and not answered yet.
    pub fn callouts(&self) -> Vec<Callout> {
        self.store.data().calls.clone()
    }

    /// Answer a callout with an HTTP response.
    ///
    /// # Errors
    /// On a trap or an unknown token.
    pub fn answer(
        &mut self,
        token: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<()> {
        let mut h: Vec<(String, Vec<u8>)> =
            vec![(":status".into(), status.to_string().into_bytes())];
        h.extend(
            headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())),
        );
        self.deliver(
            token,
            Some(CallResponse {
                headers: h,
                body: body.to_vec(),
            }),
        )
    }

    /// Fail a callout (reset / timeout / no healthy upstream: Envoy reports no headers).
    ///
    /// # Errors
    /// On a trap or an unknown token.
    pub fn fail(&mut self, token: u32) -> Result<()> {
        self.deliver(token, None)
    }

    fn deliver(&mut self, token: u32, resp: Option<CallResponse>) -> Result<()> {
        let pos = self
            .store
            .data()
            .calls
            .iter()
            .position(|c| c.token == token)
            .ok_or_else(|| Error::msg("unknown callout token"))?;
        let call = self.store.data_mut().calls.remove(pos);
        let _ = call;
        let (n, body) = match &resp {
            Some(r) => (r.headers.len() as i32, r.body.len() as i32),
            None => (0, 0),
        };
        self.store.data_mut().call_response = resp;
        self.store.data_mut().effective = self.root_id;
        let r = self.call::<(i32, i32, i32, i32, i32), ()>(
            "proxy_on_http_call_response",
            (self.root_id as i32, token as i32, n, body, 0),
        );
        self.store.data_mut().call_response = None;
        self.store.data_mut().effective = self.root_id;
        r
    }

    /// Host calls this VM made since it started or since [`Vm::reset_host_calls`].
    pub fn host_calls(&self) -> HostCalls {
        self.store.data().host_calls.clone()
    }

    /// Start counting host calls from zero.
    pub fn reset_host_calls(&mut self) {
        self.store.data_mut().host_calls.clear();
    }

    /// Wasm instructions this VM has run so far (0 unless the filter was loaded with
    /// [`Filter::load_metered`]).
    pub fn wasm_instructions(&self) -> u64 {
        self.store.get_fuel().map_or(0, |left| u64::MAX - left)
    }

    /// What the filter printed through WASI (should stay empty).
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.store.data().stdout).into_owned()
    }

    /// Bytes of linear memory (for leak checks in long runs).
    pub fn memory_size(&mut self) -> usize {
        match self.instance.get_export(&mut self.store, "memory") {
            Some(Extern::Memory(m)) => m.data_size(&self.store),
            _ => 0,
        }
    }
}

// ---- host functions ----

type C<'a> = Caller<'a, HostState>;

fn tally(caller: &mut C<'_>, name: &'static str) {
    *caller.data_mut().host_calls.entry(name).or_insert(0) += 1;
}

fn memory(caller: &mut C<'_>) -> Result<Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(Error::msg("the module exports no memory")),
    }
}

fn read(caller: &mut C<'_>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let mut buf = vec![0u8; len as u32 as usize];
    mem.read(&*caller, ptr as u32 as usize, &mut buf)?;
    Ok(buf)
}

fn read_str(caller: &mut C<'_>, ptr: i32, len: i32) -> Result<String> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

fn write(caller: &mut C<'_>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let mem = memory(caller)?;
    mem.write(&mut *caller, ptr as u32 as usize, bytes)?;
    Ok(())
}

fn write_u32(caller: &mut C<'_>, ptr: i32, v: u32) -> Result<()> {
    write(caller, ptr, &v.to_le_bytes())
}

/// Copy `data` into guest memory (allocated by the guest) and return pointer and size.
fn give(caller: &mut C<'_>, data: &[u8], ret_ptr: i32, ret_size: i32) -> Result<()> {
    let alloc = match caller.get_export("proxy_on_memory_allocate") {
        Some(Extern::Func(f)) => f.typed::<i32, i32>(&*caller)?,
        _ => return Err(Error::msg("no proxy_on_memory_allocate")),
    };
    tally(caller, "proxy_on_memory_allocate");
    let p = alloc.call(&mut *caller, data.len() as i32)?;
    write(caller, p, data)?;
    write_u32(caller, ret_ptr, p as u32)?;
    write_u32(caller, ret_size, data.len() as u32)
}

/// `give` a value that may be absent: the ABI answers `NotFound` without writing anything.
fn give_found(
    caller: &mut C<'_>,
    value: Option<&[u8]>,
    ret_ptr: i32,
    ret_size: i32,
) -> Result<i32> {
    match value {
        Some(v) => {
            give(caller, v, ret_ptr, ret_size)?;
            Ok(OK)
        }
        None => Ok(NOT_FOUND),
    }
}

fn serialize_map(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn deserialize_map(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let u32_at = |i: usize| -> Option<usize> {
        Some(u32::from_le_bytes(bytes.get(i..i + 4)?.try_into().ok()?) as usize)
    };
    let Some(n) = u32_at(0) else {
        return Vec::new();
    };
    let mut p = 4 + n * 8;
    let mut out = Vec::new();
    for i in 0..n {
        let (Some(kl), Some(vl)) = (u32_at(4 + i * 8), u32_at(8 + i * 8)) else {
            break;
        };
        let k = bytes.get(p..p + kl).unwrap_or_default();
        p += kl + 1;
        let v = bytes.get(p..p + vl).unwrap_or_default();
        p += vl + 1;
        out.push((String::from_utf8_lossy(k).into_owned(), v.to_vec()));
    }
    out
}

/// The header map `map_type` of the effective context.
fn with_map<R>(
    caller: &mut C<'_>,
    map_type: i32,
    f: impl FnOnce(&mut Vec<(String, Vec<u8>)>) -> R,
) -> Option<R> {
    let st = caller.data_mut();
    match map_type {
        REQUEST_HEADERS => {
            let id = st.effective;
            st.streams.get_mut(&id).map(|s| f(&mut s.headers))
        }
        CALL_RESPONSE_HEADERS => st.call_response.as_mut().map(|r| f(&mut r.headers)),
        _ => None,
    }
}

fn define_abi(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: C<'_>, level: i32, ptr: i32, len: i32| -> Result<i32> {
            tally(&mut c, "proxy_log");
            let message = read_str(&mut c, ptr, len)?;
            let vm = c.data().vm;
            c.data()
                .env
                .lock()
                .logs
                .push(LogLine { level, vm, message });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_log_level",
        |mut c: C<'_>, ret: i32| -> Result<i32> {
            tally(&mut c, "proxy_get_log_level");
            let level = c.data().env.lock().log_level;
            write_u32(&mut c, ret, level as u32)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C<'_>, ret: i32| -> Result<i32> {
            tally(&mut c, "proxy_get_current_time_nanoseconds");
            let now = c.data().env.lock().now_ns;
            write(&mut c, ret, &now.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C<'_>, ms: i32| -> Result<i32> {
            tally(&mut c, "proxy_set_tick_period_milliseconds");
            c.data_mut().tick_ms = ms as u32;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C<'_>,
         kind: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> Result<i32> {
            tally(&mut c, "proxy_get_buffer_bytes");
            let data = match kind {
                PLUGIN_CONFIGURATION => c.data().plugin_config.clone(),
                VM_CONFIGURATION => Vec::new(),
                CALL_RESPONSE_BODY => match &c.data().call_response {
                    Some(r) => r.body.clone(),
                    None => return Ok(NOT_FOUND),
                },
                _ => return Ok(NOT_FOUND),
            };
            let start = (start as u32 as usize).min(data.len());
            let end = start.saturating_add(max as u32 as usize).min(data.len());
            if data.is_empty() {
                return Ok(NOT_FOUND);
            }
            give(&mut c, &data[start..end], ret_ptr, ret_size)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C<'_>, map_type: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
            tally(&mut c, "proxy_get_header_map_pairs");
            let Some(bytes) = with_map(&mut c, map_type, |m| serialize_map(m)) else {
                return Ok(NOT_FOUND);
            };
            give(&mut c, &bytes, ret_ptr, ret_size)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_header_map_pairs",
        |mut c: C<'_>, map_type: i32, ptr: i32, len: i32| -> Result<i32> {
            tally(&mut c, "proxy_set_header_map_pairs");
            let pairs = deserialize_map(&read(&mut c, ptr, len)?);
            Ok(with_map(&mut c, map_type, |m| *m = pairs).map_or(NOT_FOUND, |_| OK))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C<'_>,
         map_type: i32,
         kp: i32,
         kl: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> Result<i32> {
            tally(&mut c, "proxy_get_header_map_value");
            let key = read_str(&mut c, kp, kl)?.to_ascii_lowercase();
            let value = with_map(&mut c, map_type, |m| {
                m.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
            })
            .flatten();
            give_found(&mut c, value.as_deref(), ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> Result<i32> {
            tally(&mut c, "proxy_replace_header_map_value");
            let key = read_str(&mut c, kp, kl)?.to_ascii_lowercase();
            let value = read(&mut c, vp, vl)?;
            Ok(with_map(&mut c, map_type, |m| {
                m.retain(|(k, _)| *k != key);
                m.push((key, value));
            })
            .map_or(NOT_FOUND, |_| OK))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> Result<i32> {
            tally(&mut c, "proxy_add_header_map_value");
            let key = read_str(&mut c, kp, kl)?.to_ascii_lowercase();
            let value = read(&mut c, vp, vl)?;
            Ok(with_map(&mut c, map_type, |m| m.push((key, value))).map_or(NOT_FOUND, |_| OK))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C<'_>, map_type: i32, kp: i32, kl: i32| -> Result<i32> {
            tally(&mut c, "proxy_remove_header_map_value");
            let key = read_str(&mut c, kp, kl)?.to_ascii_lowercase();
            Ok(with_map(&mut c, map_type, |m| m.retain(|(k, _)| *k != key))
                .map_or(NOT_FOUND, |_| OK))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C<'_>, pp: i32, pl: i32, ret_ptr: i32, ret_size: i32| -> Result<i32> {
            tally(&mut c, "proxy_get_property");
            let path = read_str(&mut c, pp, pl)?;
            let id = c.data().effective;
            let value = c
                .data()
                .streams
                .get(&id)
                .and_then(|s| s.properties.get(&path).cloned());
            give_found(&mut c, value.as_deref(), ret_ptr, ret_size)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_property",
        |mut c: C<'_>, pp: i32, pl: i32, vp: i32, vl: i32| -> Result<i32> {
            tally(&mut c, "proxy_set_property");
            let path = read_str(&mut c, pp, pl)?;
            let value = read(&mut c, vp, vl)?;
            let (vm, context_id) = (c.data().vm, c.data().effective);
            // Envoy: the effective context's stream info, else NotFound (the root context).
            if !c.data().streams.contains_key(&context_id) {
                return Ok(NOT_FOUND);
            }
            c.data().env.lock().filter_states.push(FilterState {
                vm,
                context_id,
                key: format!("wasm.{path}"),
                value,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C<'_>,
         kp: i32,
         kl: i32,
         ret_ptr: i32,
         ret_size: i32,
         ret_cas: i32|
         -> Result<i32> {
            tally(&mut c, "proxy_get_shared_data");
            let key = read_str(&mut c, kp, kl)?;
            let entry = c.data().env.lock().shared.get(&key).cloned();
            match entry {
                Some((v, cas)) => {
                    give(&mut c, &v, ret_ptr, ret_size)?;
                    write_u32(&mut c, ret_cas, cas)?;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C<'_>, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> Result<i32> {
            tally(&mut c, "proxy_set_shared_data");
            let key = read_str(&mut c, kp, kl)?;
            let value = if vp == 0 {
                Vec::new()
            } else {
                read(&mut c, vp, vl)?
            };
            let env = c.data().env.clone();
            let mut s = env.lock();
            let cas = cas as u32;
            if cas != 0 {
                if let Some((_, current)) = s.shared.get(&key) {
                    if *current != cas {
                        return Ok(CAS_MISMATCH);
                    }
                }
            }
            s.next_cas = s.next_cas.wrapping_add(1).max(1);
            let next = s.next_cas;
            s.shared.insert(key, (value, next));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_continue_stream",
        |mut c: C<'_>, _kind: i32| -> Result<i32> {
            tally(&mut c, "proxy_continue_stream");
            let id = c.data().effective;
            match c.data_mut().streams.get_mut(&id) {
                Some(s) => {
                    s.resumed = true;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_close_stream",
        |mut c: C<'_>, _kind: i32| -> Result<i32> {
            tally(&mut c, "proxy_close_stream");
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C<'_>,
         status: i32,
         _dp: i32,
         _dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         _grpc: i32|
         -> Result<i32> {
            tally(&mut c, "proxy_send_local_response");
            let body = String::from_utf8_lossy(&read(&mut c, bp, bl)?).into_owned();
            let headers = deserialize_map(&read(&mut c, hp, hl)?)
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect();
            let id = c.data().effective;
            match c.data_mut().streams.get_mut(&id) {
                Some(s) if s.reply.is_none() => {
                    s.reply = Some((status as u32, headers, body));
                    Ok(OK)
                }
                _ => Ok(BAD_ARGUMENT),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C<'_>,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         _bp: i32,
         _bl: i32,
         _tp: i32,
         _tl: i32,
         timeout: i32,
         ret: i32|
         -> Result<i32> {
            tally(&mut c, "proxy_http_call");
            let cluster = read_str(&mut c, up, ul)?;
            let headers = deserialize_map(&read(&mut c, hp, hl)?)
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect();
            if cluster.is_empty() {
                return Ok(BAD_ARGUMENT);
            }
            let token = c.data().next_token;
            c.data_mut().next_token += 1;
            c.data_mut().calls.push(Callout {
                token,
                cluster,
                headers,
                timeout_ms: timeout as u32,
            });
            write_u32(&mut c, ret, token)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
        |mut c: C<'_>, id: i32| -> Result<i32> {
            tally(&mut c, "proxy_set_effective_context");
            let id = id as u32;
            let st = c.data_mut();
            if id == st.root_id || st.streams.contains_key(&id) {
                st.effective = id;
                Ok(OK)
            } else {
                Ok(BAD_ARGUMENT)
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut c: C<'_>,
         np: i32,
         nl: i32,
         ap: i32,
         al: i32,
         ret_ptr: i32,
         ret_size: i32|
         -> Result<i32> {
            tally(&mut c, "proxy_call_foreign_function");
            let name = read_str(&mut c, np, nl)?;
            let args = read(&mut c, ap, al)?;
            let f = c.data().env.lock().foreign.get(&name).cloned();
            match f.map(|f| f(&args)) {
                None => Ok(NOT_FOUND),
                Some(Ok(result)) => {
                    give(&mut c, &result, ret_ptr, ret_size)?;
                    Ok(OK)
                }
                Some(Err(status)) => Ok(status),
            }
        },
    )?;
    linker.func_wrap("env", "proxy_done", |mut c: C<'_>| -> Result<i32> {
        tally(&mut c, "proxy_done");
        Ok(OK)
    })?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C<'_>, _kind: i32, np: i32, nl: i32, ret: i32| -> Result<i32> {
            tally(&mut c, "proxy_define_metric");
            let name = read_str(&mut c, np, nl)?;
            let names = &mut c.data_mut().metric_names;
            let id = match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            write_u32(&mut c, ret, id as u32)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C<'_>, id: i32, by: i64| -> Result<i32> {
            tally(&mut c, "proxy_increment_metric");
            let Some(name) = c.data().metric_names.get(id as u32 as usize).cloned() else {
                return Ok(NOT_FOUND);
            };
            *c.data().env.lock().metrics.entry(name).or_insert(0) += by;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: C<'_>, id: i32, v: i64| -> Result<i32> {
            tally(&mut c, "proxy_record_metric");
            let Some(name) = c.data().metric_names.get(id as u32 as usize).cloned() else {
                return Ok(NOT_FOUND);
            };
            c.data().env.lock().metrics.insert(name, v);
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: C<'_>, id: i32, ret: i32| -> Result<i32> {
            tally(&mut c, "proxy_get_metric");
            let Some(name) = c.data().metric_names.get(id as u32 as usize).cloned() else {
                return Ok(NOT_FOUND);
            };
            let v = c.data().env.lock().metrics.get(&name).copied().unwrap_or(0);
            write(&mut c, ret, &(v as u64).to_le_bytes())?;
            Ok(OK)
        },
    )?;
    Ok(())
}

fn define_wasi(linker: &mut Linker<HostState>) -> Result<()> {
    const M: &str = "wasi_snapshot_preview1";
    linker.func_wrap(
        M,
        "fd_write",
        |mut c: C<'_>, _fd: i32, iovs: i32, n: i32, ret: i32| -> Result<i32> {
            tally(&mut c, "fd_write");
            let mut total = 0u32;
            for i in 0..n {
                let iov = read(&mut c, iovs + i * 8, 8)?;
                let ptr = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                let data = read(&mut c, ptr as i32, len as i32)?;
                c.data_mut().stdout.extend_from_slice(&data);
                total += len;
            }
            write_u32(&mut c, ret, total)?;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        M,
        "environ_sizes_get",
        |mut c: C<'_>, count: i32, size: i32| -> Result<i32> {
            tally(&mut c, "environ_sizes_get");
            write_u32(&mut c, count, 0)?;
            write_u32(&mut c, size, 0)?;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        M,
        "environ_get",
        |mut c: C<'_>, _a: i32, _b: i32| -> Result<i32> {
            tally(&mut c, "environ_get");
            Ok(0)
        },
    )?;
    linker.func_wrap(
        M,
        "random_get",
        |mut c: C<'_>, buf: i32, len: i32| -> Result<i32> {
            tally(&mut c, "random_get");
            // Deterministic: runs are reproducible; nothing in the filter needs secrecy from it.
            let mut bytes = Vec::with_capacity(len as u32 as usize);
            let mut x = c.data().random;
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                bytes.push(x as u8);
            }
            c.data_mut().random = x;
            write(&mut c, buf, &bytes)?;
            Ok(0)
        },
    )?;
    linker.func_wrap(M, "proc_exit", |mut c: C<'_>, code: i32| -> Result<()> {
        tally(&mut c, "proc_exit");
        Err(Error::msg(format!("the filter called proc_exit({code})")))
    })?;
    Ok(())
}
