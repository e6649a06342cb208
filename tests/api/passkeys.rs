//! Passkeys end to end with a real software authenticator (1Password's `passkey` crates): it
//! makes and signs credentials for the options Warden hands out, over HTTP, as a browser's
//! WebAuthn client would. Registration, the second factor, passwordless sign-in, single use,
//! a cloned authenticator's counter, removal.

use passkey::authenticator::{Authenticator, UiHint, UserCheck, UserValidationMethod};
use passkey::client::{Client, DefaultClientData};
use passkey::types::ctap2::{Aaguid, Ctap2Error};
use passkey::types::webauthn::{CredentialCreationOptions, CredentialRequestOptions};
use passkey::types::Passkey;
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

use crate::helpers::{assert_problem, spawn_app, TestApp, PASSWORD};

/// The person at the authenticator: present, and verified (PIN or biometrics) when asked.
struct Person;

#[async_trait::async_trait]
impl UserValidationMethod for Person {
    type PasskeyItem = Passkey;

    async fn check_user<'a>(
        &self,
        _hint: UiHint<'a, Passkey>,
        presence: bool,
        verification: bool,
    ) -> Result<UserCheck, Ctap2Error> {
        Ok(UserCheck {
            presence,
            verification,
        })
    }

    fn is_verification_enabled(&self) -> Option<bool> {
        Some(true)
    }

    fn is_presence_enabled(&self) -> bool {
        true
    }
}

type Device = Client<
    Option<Passkey>,
    Person,
    passkey::crypto::rust_crypto::RustCryptoBackend,
    public_suffix::PublicSuffixList,
    (),
>;

/// A software authenticator that keeps a signature counter, holding `store`.
fn device(store: Option<Passkey>) -> Device {
    let mut authenticator = Authenticator::new(
        Aaguid::new_empty(),
        store,
        Person,
        passkey::crypto::rust_crypto::RustCryptoBackend,
    );
    authenticator.set_make_credentials_with_signature_counter(true);
    Client::new(authenticator)
}

/// The origin the tests' Warden is configured with (`WARDEN_PUBLIC_URL`).
fn origin() -> Url {
    Url::parse("https://app.warden.test").expect("url")
}

async fn json_of(response: reqwest::Response, status: StatusCode) -> Value {
    let got = response.status();
    let body: Value = response.json().await.expect("json");
    assert_eq!(got, status, "{body}");
    body
}

/// Registers a passkey for the session's account; returns the created credential's answer.
async fn register(app: &TestApp, session: &str, device: &mut Device, name: &str) -> Value {
    let options = app
        .post(
            "/v1/me/passkeys/registration",
            json!({ "password": PASSWORD }),
            Some(session),
        )
        .await;
    let options: CredentialCreationOptions =
        serde_json::from_value(json_of(options, StatusCode::OK).await).expect("creation options");
    let created = device
        .register(&origin(), options, DefaultClientData)
        .await
        .expect("the authenticator creates a credential");
    let finished = app
        .post(
            "/v1/me/passkeys/registration/finish",
            json!({ "credential": created, "name": name }),
            Some(session),
        )
        .await;
    json_of(finished, StatusCode::CREATED).await
}

/// The authenticator's answer to request options Warden gave.
async fn assertion(device: &mut Device, options: Value) -> Value {
    let options: CredentialRequestOptions =
        serde_json::from_value(options).expect("request options");
    let signed = device
        .authenticate(&origin(), options, DefaultClientData)
        .await
        .expect("the authenticator signs");
    serde_json::to_value(signed).expect("json")
}

async fn passwordless(app: &TestApp, device: &mut Device) -> (Value, reqwest::Response) {
    let options = app
        .post("/v1/sessions/passkey/options", json!({}), None)
        .await;
    let answer = assertion(device, json_of(options, StatusCode::OK).await).await;
    let signed_in = app
        .post(
            "/v1/sessions/passkey",
            json!({ "credential": answer }),
            None,
        )
        .await;
    (answer, signed_in)
}

async fn refusals(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT payload->'PasskeyRefused'->>'reason' FROM events
         WHERE event_type = 'account.passkey.refused' ORDER BY sequence",
    )
    .fetch_all(&app.pool)
    .await
    .expect("events")
}

#[tokio::test]
async fn a_passkey_registers_and_then_passes_the_second_step_once() {
    let app = spawn_app().await;
    let session = app.signed_up("ada@example.com").await;
    let mut laptop = device(None);
    let registered = register(&app, &session, &mut laptop, "Ada's laptop").await;
    assert_eq!(registered["name"], "Ada's laptop");
    let listed = json_of(
        app.get("/v1/me/passkeys", Some(&session)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["passkeys"][0]["id"], registered["id"], "{listed}");

    // A password login is now challenged, with the passkey offered.
    let login = json_of(
        app.log_in_with("ada@example.com", PASSWORD).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(login["methods"], json!(["passkey"]), "{login}");
    let challenge = login["challenge"].as_str().expect("challenge");
    let options = app
        .post(
            "/v1/sessions/mfa/passkey-options",
            json!({ "challenge": challenge }),
            None,
        )
        .await;
    let answer = assertion(&mut laptop, json_of(options, StatusCode::OK).await).await;
    let step = json!({ "challenge": challenge, "method": "passkey", "credential": answer });
    let signed_in = json_of(
        app.post("/v1/sessions/mfa", step.clone(), None).await,
        StatusCode::CREATED,
    )
    .await;
    let token = signed_in["token"].as_str().expect("a session");
    let me = app.api_as(token).me().await;
    assert_eq!(me.status(), StatusCode::OK);

    // The same answer again opens nothing.
    let replayed = app.post("/v1/sessions/mfa", step, None).await;
    assert_problem(replayed, StatusCode::UNAUTHORIZED, "challenge_invalid").await;

    // Registration options are answered once: a second answer finds the ceremony closed.
    let stale = app
        .post(
            "/v1/me/passkeys/registration/finish",
            json!({ "credential": { "id": "x", "rawId": "eA", "type": "public-key",
                    "response": { "attestationObject": "", "clientDataJSON": "" } },
                    "name": "again" }),
            Some(&session),
        )
        .await;
    assert_problem(
        stale,
        StatusCode::UNPROCESSABLE_ENTITY,
        "passkey_registration_invalid",
    )
    .await;
}

#[tokio::test]
async fn a_passkey_alone_signs_in_once_per_answer_and_a_cloned_one_is_refused() {
    let app = spawn_app().await;
    let session = app.signed_up("ada@example.com").await;
    let mut phone = device(None);
    register(&app, &session, &mut phone, "phone").await;
    // A copy of the authenticator as it is now, before any use moved its counter.
    let mut clone = device(phone.authenticator().store().clone());

    let (answer, signed_in) = passwordless(&app, &mut phone).await;
    let signed_in = json_of(signed_in, StatusCode::CREATED).await;
    let token = signed_in["token"].as_str().expect("a session");
    let sessions = json_of(
        app.get("/v1/me/sessions", Some(token)).await,
        StatusCode::OK,
    )
    .await;
    assert!(sessions.to_string().contains("\"passkey\""), "{sessions}");
    let replayed = app
        .post(
            "/v1/sessions/passkey",
            json!({ "credential": answer }),
            None,
        )
        .await;
    assert_problem(replayed, StatusCode::UNAUTHORIZED, "passkey_refused").await;

    let (_, again) = passwordless(&app, &mut phone).await;
    assert_eq!(
        again.status(),
        StatusCode::CREATED,
        "a second sign-in, new options"
    );
    // The copy signs with a counter below the one Warden saw last.
    let (_, cloned) = passwordless(&app, &mut clone).await;
    assert_problem(cloned, StatusCode::UNAUTHORIZED, "passkey_refused").await;
    assert_eq!(refusals(&app).await, vec!["counter_went_backwards"]);
}

#[tokio::test]
async fn a_removed_passkey_signs_in_no_more_and_removal_needs_the_password() {
    let app = spawn_app().await;
    let session = app.signed_up("ada@example.com").await;
    let mut key = device(None);
    let registered = register(&app, &session, &mut key, "security key").await;
    let id = registered["id"].as_str().expect("id");

    let renamed = app
        .client
        .patch(app.url(&format!("/v1/me/passkeys/{id}")))
        .bearer_auth(&session)
        .json(&json!({ "name": "blue key" }))
        .send()
        .await
        .expect("sent");
    assert_eq!(renamed.status(), StatusCode::NO_CONTENT);
    let listed = json_of(
        app.get("/v1/me/passkeys", Some(&session)).await,
        StatusCode::OK,
    )
    .await;
    assert_eq!(listed["passkeys"][0]["name"], "blue key");

    let remove = |password: &str| {
        app.client
            .delete(app.url(&format!("/v1/me/passkeys/{id}")))
            .bearer_auth(&session)
            .json(&json!({ "password": password }))
            .send()
    };
    let wrong = remove("not the password").await.expect("sent");
    assert_problem(wrong, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    assert_eq!(
        remove(PASSWORD).await.expect("sent").status(),
        StatusCode::NO_CONTENT
    );

    let (_, signed_in) = passwordless(&app, &mut key).await;
    assert_problem(signed_in, StatusCode::UNAUTHORIZED, "passkey_refused").await;
    assert_eq!(refusals(&app).await, vec!["unknown_credential"]);
    // And the password login is no longer challenged.
    let login = app.log_in_with("ada@example.com", PASSWORD).await;
    assert_eq!(login.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_passkey_proves_the_owner_again_once_instead_of_the_password() {
    let app = spawn_app().await;
    let session = app.signed_up("ada@example.com").await;
    let mut laptop = device(None);
    register(&app, &session, &mut laptop, "laptop").await;

    let options = app
        .post(
            "/v1/me/passkeys/reauthentication-options",
            json!({}),
            Some(&session),
        )
        .await;
    let answer = assertion(&mut laptop, json_of(options, StatusCode::OK).await).await;
    let proved = app
        .post(
            "/v1/me/passkeys/registration",
            json!({ "passkey": answer }),
            Some(&session),
        )
        .await;
    let creation = json_of(proved, StatusCode::OK).await;
    assert!(creation["publicKey"]["challenge"].is_string(), "{creation}");

    // The same answer proves nothing twice.
    let again = app
        .post(
            "/v1/me/passkeys/registration",
            json!({ "passkey": answer }),
            Some(&session),
        )
        .await;
    assert_problem(
        again,
        StatusCode::UNPROCESSABLE_ENTITY,
        "passkey_ceremony_invalid",
    )
    .await;

    // An answer from another authenticator is refused and recorded.
    let options = app
        .post(
            "/v1/me/passkeys/reauthentication-options",
            json!({}),
            Some(&session),
        )
        .await;
    let options = json_of(options, StatusCode::OK).await;
    let mut stranger = device(None);
    let other = app.signed_up("eve@example.com").await;
    register(&app, &other, &mut stranger, "eve's").await;
    let mut options: CredentialRequestOptions =
        serde_json::from_value(options).expect("request options");
    options.public_key.allow_credentials = None;
    let forged = stranger
        .authenticate(&origin(), options, DefaultClientData)
        .await
        .expect("signs");
    let refused = app
        .post(
            "/v1/me/passkeys/registration",
            json!({ "passkey": forged }),
            Some(&session),
        )
        .await;
    assert_problem(refused, StatusCode::FORBIDDEN, "reauthentication_failed").await;
    assert_eq!(refusals(&app).await, vec!["unknown_credential"]);
}
