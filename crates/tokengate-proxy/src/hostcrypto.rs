//! Envoy's `verify_signature` foreign function: the bytes of its protobuf messages
//! (`envoy.source.extensions.common.wasm.VerifySignatureArguments` and `…Result`), so that a
//! token signature is checked by Envoy's own BoringSSL when the core hands one out
//! ([`tokengate::Gate::host_check`]). What is checked, with which key, and what follows from the
//! answer stay the core's; this is only the wire format.

/// The foreign function's name.
pub const FUNCTION: &str = "verify_signature";

/// `VerifySignatureArguments { hash_function = 1: "sha256", public_key = 2: spki_der,
/// signature = 3, text = 4 }`, serialized.
pub fn arguments(spki_der: &[u8], signature: &[u8], text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(spki_der.len() + signature.len() + text.len() + 24);
    field(&mut out, 1, b"sha256");
    field(&mut out, 2, spki_der);
    field(&mut out, 3, signature);
    field(&mut out, 4, text);
    out
}

/// A length-delimited field (wire type 2).
fn field(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push((number << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `VerifySignatureResult.result` (field 1, a bool) from the serialized message; an empty
/// answer is the proto3 default `false`. `None` when the bytes are not such a message: the
/// host's answer is then not taken at all.
pub fn result(bytes: &[u8]) -> Option<bool> {
    let mut valid = false;
    let mut rest = bytes;
    while let Some((&tag, after)) = rest.split_first() {
        let (value, after) = read_varint(after)?;
        rest = match (tag >> 3, tag & 7) {
            (1, 0) => {
                valid = value != 0;
                after
            }
            (_, 0) => after,
            (_, 2) => after.get(usize::try_from(value).ok()?..)?,
            _ => return None,
        };
    }
    Some(valid)
}

fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, bytes.get(i + 1..)?));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_four_length_delimited_fields() {
        let text = vec![b'x'; 300];
        let a = arguments(&[0x30, 0x00], &[1, 2, 3], &text);
        let mut want = vec![0x0a, 6];
        want.extend_from_slice(b"sha256");
        want.extend_from_slice(&[0x12, 2, 0x30, 0x00, 0x1a, 3, 1, 2, 3, 0x22, 0xac, 0x02]);
        want.extend_from_slice(&text);
        assert_eq!(a, want);
    }

    #[test]
    fn only_a_true_result_field_is_valid() {
        assert_eq!(result(&[0x08, 0x01]), Some(true));
        assert_eq!(result(&[]), Some(false));
        assert_eq!(result(&[0x08, 0x00]), Some(false));
        let mut refused = vec![0x12, 5];
        refused.extend_from_slice(b"nope!");
        assert_eq!(result(&refused), Some(false));
        // The error text before the field, and a later false field overriding an earlier true.
        let mut both = refused.clone();
        both.extend_from_slice(&[0x08, 0x01]);
        assert_eq!(result(&both), Some(true));
        assert_eq!(result(&[0x08, 0x01, 0x08, 0x00]), Some(false));
    }

    #[test]
    fn malformed_answers_are_not_taken() {
        assert_eq!(result(&[0x08]), None); // truncated varint
        assert_eq!(result(&[0x12, 9, b'a']), None); // length past the end
        assert_eq!(result(&[0x09, 0, 0, 0, 0, 0, 0, 0, 0]), None); // fixed64: not in this message
        assert_eq!(
            result(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            None
        );
    }
}
