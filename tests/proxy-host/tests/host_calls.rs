//! Host calls per request, counted by the wasmtime host. Under Envoy's V8 a call that returns
//! data (a header read, with the host calling back into the filter's allocator) costs about as
//! much as the empty filter's whole request, so the warm path makes only the calls it needs:
//! one read of the header map, one filter state write (the audit record), one header per
//! forwarded claim. Counts, not times: the same on any machine.

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Value};
use tokengate_proxy_host::{Env, Filter, HostCalls, Request, Response, Vm};

/// The host calls of one whole request: headers, then the end of the stream.
fn calls_of(vm: &mut Vm, req: Request) -> (Response, HostCalls) {
    vm.reset_host_calls();
    let id = vm.send(req).unwrap();
    let response = vm.response(id);
    vm.end(id).unwrap();
    (response, vm.host_calls())
}

fn calls(pairs: &[(&'static str, u64)]) -> HostCalls {
    pairs.iter().copied().collect::<BTreeMap<_, _>>()
}

/// What every request costs: the header map, read once (the host hands it over through the
/// filter's allocator), and the audit record as filter state.
const READ_AND_RECORD: [(&str, u64); 3] = [
    ("proxy_get_header_map_pairs", 1),
    ("proxy_on_memory_allocate", 1),
    ("proxy_set_property", 1),
];

#[test]
fn a_warm_request_with_the_default_config_makes_four_host_calls_and_one_per_forwarded_claim() {
    let env = Env::at(NOW);
    // The README's shape: two forwarded claims, the default audit record (filter state).
    let mut vm = start(&env, &config(json!({})));
    let t = token("orders/read");
    let allowed = calls(&[
        READ_AND_RECORD[0],
        READ_AND_RECORD[1],
        READ_AND_RECORD[2],
        ("proxy_add_header_map_value", 2),
    ]);
    // A new token (RS256 verified), the same token again (replayed), and after a tick (the
    // gate asked again, the verified-token cache answers): the same calls each time.
    for step in ["verified", "replayed", "cached after a tick"] {
        if step == "cached after a tick" {
            vm.advance_ms(100).unwrap();
        }
        let (r, c) = calls_of(&mut vm, envoy_request("GET", "/orders", Some(&t)));
        assert_eq!(r.status(), 200, "{step}");
        assert_eq!(c, allowed, "{step}");
    }
    // No metric calls per request: counters are flushed on the tick, one call per counter.
    vm.reset_host_calls();
    vm.advance_ms(100).unwrap();
    assert_eq!(vm.host_calls().get("proxy_increment_metric"), Some(&1));
    assert_eq!(env.metric("tokengate_allowed_total"), 3);
}

#[test]
fn denials_anonymous_routes_and_spoofed_headers_add_only_their_own_calls() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({})));
    let t = token("orders/read");
    let (r, c) = calls_of(&mut vm, envoy_request("POST", "/orders", Some(&t)));
    assert_eq!(r.status(), 403);
    let mut denied = calls(&READ_AND_RECORD);
    denied.insert("proxy_send_local_response", 1);
    assert_eq!(c, denied);
    let (r, c) = calls_of(&mut vm, envoy_request("GET", "/health", None));
    assert_eq!(r.status(), 200);
    assert_eq!(c, calls(&READ_AND_RECORD));
    // A forwarded header the client sent itself is removed, once however often it came.
    let spoofed = envoy_request("GET", "/orders", Some(&t))
        .header("x-tokengate-client-id", "admin")
        .header("x-tokengate-client-id", "root");
    let (r, c) = calls_of(&mut vm, spoofed);
    assert_eq!(r.header("x-tokengate-client-id").as_deref(), Some(CLIENT));
    assert_eq!(c.get("proxy_remove_header_map_value"), Some(&1));
    assert_eq!(c.get("proxy_add_header_map_value"), Some(&2));
}

#[test]
fn the_audit_line_replaces_the_filter_state_write_with_one_log_call() {
    let env = Env::at(NOW);
    let mut vm = start(&env, &config(json!({"audit": "log"})));
    let t = token("orders/read");
    for _ in 0..2 {
        let (_, c) = calls_of(&mut vm, envoy_request("GET", "/orders", Some(&t)));
        assert_eq!(
            c,
            calls(&[
                READ_AND_RECORD[0],
                READ_AND_RECORD[1],
                ("proxy_log", 1),
                ("proxy_add_header_map_value", 2),
            ])
        );
    }
}

#[test]
fn a_replayed_answer_is_the_gates_answer_for_a_fraction_of_the_work() {
    let filter = Filter::load_metered(&Filter::default_path()).unwrap();
    let env = Env::at(NOW);
    let mut vm = env.vm(&filter, &config(json!({}))).unwrap();
    let t = token("orders/read");
    let run = |vm: &mut Vm| {
        let before = vm.wasm_instructions();
        let (r, _) = calls_of(vm, envoy_request("GET", "/orders", Some(&t)));
        (r, vm.wasm_instructions() - before)
    };
    let (first, verified) = run(&mut vm);
    let (again, replayed) = run(&mut vm);
    vm.advance_ms(100).unwrap();
    let (after_tick, cached) = run(&mut vm);
    println!(
        "wasm instructions per request: RS256 verified {verified}, cache hit through the gate \
         {cached}, replayed {replayed}"
    );
    assert_eq!(first, again);
    assert_eq!(first, after_tick);
    assert!(replayed * 2 < cached, "replayed {replayed}, gate {cached}");
    let records: Vec<Value> = env
        .filter_states()
        .iter()
        .map(|s| serde_json::from_slice(&s.value).unwrap())
        .collect();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["cached"], false);
    for r in &records[1..] {
        let mut expected = records[0].clone();
        expected["cached"] = Value::Bool(true);
        assert_eq!(
            r, &expected,
            "the replayed record is the gate's, answered from memory"
        );
    }
}
