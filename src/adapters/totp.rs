//! RFC 6238 TOTP (SHA-1, 6 digits, 30 s steps) through totp-rs, with secrets sealed under the
//! master key, the `otpauth://` URI and its QR code.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use qrcode::render::svg;
use qrcode::QrCode;
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};
use warden_aggregates::account::TotpVerifier;
use warden_aggregates::shared::{SealedText, TotpCode};

use super::sealing::MasterKey;

pub const STEP_SECS: u64 = 30;
pub const DIGITS: usize = 6;
/// 160 bits, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
const SEAL_PURPOSE: &str = "totp-secret";

/// The code of `secret` at `time` (seconds since the epoch): the computation every TOTP check
/// in Warden goes through, and the one the RFC vectors test.
pub fn code_at(
    algorithm: Algorithm,
    digits: usize,
    step_secs: u64,
    secret: &[u8],
    time: u64,
) -> Option<String> {
    let totp = TOTP::new(algorithm, digits, 0, step_secs, secret.to_vec()).ok()?;
    Some(totp.generate(time))
}

pub struct RfcTotp {
    master: Arc<MasterKey>,
}

/// A fresh secret: raw bytes sealed for storage, and the base32 text shown to the user once.
pub struct NewTotpSecret {
    pub sealed: SealedText,
    pub base32: String,
}

impl RfcTotp {
    pub fn new(master: Arc<MasterKey>) -> Self {
        Self { master }
    }

    pub fn new_secret(&self) -> NewTotpSecret {
        let mut bytes = [0u8; SECRET_BYTES];
        OsRng.fill_bytes(&mut bytes);
        let base32 = match Secret::Raw(bytes.to_vec()).to_encoded() {
            Secret::Encoded(text) => text,
            Secret::Raw(_) => unreachable!("to_encoded always encodes"),
        };
        NewTotpSecret {
            sealed: self.master.seal_secret(SEAL_PURPOSE, &bytes),
            base32,
        }
    }
}

impl TotpVerifier for RfcTotp {
    fn matching_step(
        &self,
        secret: &SealedText,
        code: &TotpCode,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let secret = self.master.open_secret(SEAL_PURPOSE, secret).ok()?;
        let now = u64::try_from(now.timestamp()).ok()?;
        let current = now / STEP_SECS;
        // The current step and the one before it, for clocks and typists a little behind.
        [current, current.saturating_sub(1)]
            .into_iter()
            .find(|step| {
                code_at(
                    Algorithm::SHA1,
                    DIGITS,
                    STEP_SECS,
                    &secret,
                    step * STEP_SECS,
                )
                .is_some_and(|expected| {
                    bool::from(expected.as_bytes().ct_eq(code.as_str().as_bytes()))
                })
            })
    }
}

/// `otpauth://totp/<issuer>:<account>?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`
pub fn otpauth_uri(issuer: &str, account: &str, base32: &str) -> String {
    let issuer = urlencoding::encode(issuer);
    let account = urlencoding::encode(account);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={base32}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}"
    )
}

/// An SVG QR code of `text`, or `None` if it is too long to encode.
pub fn qr_svg(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<svg::Color<'_>>()
            .min_dimensions(240, 240)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors() -> serde_json::Value {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/vectors/otp.json");
        let text = std::fs::read_to_string(path).expect("the shared OTP vectors beside the repo");
        serde_json::from_str(&text).expect("json")
    }

    #[test]
    fn the_rfc_6238_vectors_pass() {
        let vectors = vectors();
        let rfc = &vectors["rfc6238"];
        let mut checked = 0;
        for case in rfc["cases"].as_array().expect("cases") {
            let time = case["time"].as_u64().expect("time");
            for (name, algorithm) in [
                ("SHA1", Algorithm::SHA1),
                ("SHA256", Algorithm::SHA256),
                ("SHA512", Algorithm::SHA512),
            ] {
                let seed = rfc["seeds_ascii"][name].as_str().expect("seed");
                let code = code_at(algorithm, 8, 30, seed.as_bytes(), time).expect("valid");
                assert_eq!(code, case[name].as_str().expect("code"), "{name} at {time}");
                checked += 1;
            }
        }
        assert_eq!(checked, 18);
    }

    #[test]
    fn the_rfc_4226_vectors_pass() {
        let vectors = vectors();
        let hotp = &vectors["rfc4226"];
        let secret = hotp["secret_ascii"].as_str().expect("secret").as_bytes();
        let codes = hotp["codes"].as_array().expect("codes");
        for (counter, expected) in codes.iter().enumerate() {
            // HOTP(counter) is TOTP with a one-second step at time = counter.
            let code = code_at(Algorithm::SHA1, 6, 1, secret, counter as u64).expect("valid");
            assert_eq!(code, expected.as_str().expect("code"), "counter {counter}");
        }
        assert_eq!(codes.len(), 10);
    }

    #[test]
    fn a_code_matches_its_step_and_the_one_after_only() {
        let master = Arc::new(MasterKey::generate());
        let totp = RfcTotp::new(master.clone());
        let secret = totp.new_secret();
        let raw = master
            .open_secret(SEAL_PURPOSE, &secret.sealed)
            .expect("opens");
        assert_eq!(raw.len(), 20);
        let at = |secs: i64| DateTime::<Utc>::from_timestamp(secs, 0).expect("time");
        let code = code_at(Algorithm::SHA1, 6, 30, &raw, 3_000_000_000).expect("code");
        let code = TotpCode::parse(&code).expect("six digits");
        assert_eq!(
            totp.matching_step(&secret.sealed, &code, at(3_000_000_000)),
            Some(100_000_000)
        );
        assert_eq!(
            totp.matching_step(&secret.sealed, &code, at(3_000_000_029)),
            Some(100_000_000)
        );
        assert_eq!(
            totp.matching_step(&secret.sealed, &code, at(3_000_000_030)),
            Some(100_000_000)
        );
        assert_eq!(
            totp.matching_step(&secret.sealed, &code, at(3_000_000_060)),
            None
        );
        assert_eq!(
            totp.matching_step(&secret.sealed, &code, at(2_999_999_999)),
            None
        );
    }

    #[test]
    fn the_uri_carries_issuer_account_and_parameters() {
        let uri = otpauth_uri("Warden", "ada@example.com", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri,
            "otpauth://totp/Warden:ada%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Warden&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_svg(&uri).is_some_and(|svg| svg.contains("<svg")));
    }
}
