//! No secret, and no personal data, in plaintext anywhere in the database.

use serde_json::{json, Value};

use crate::helpers::{dump_database, reset_token_in, spawn_app, PASSWORD};

#[tokio::test]
async fn no_password_token_or_address_is_stored_in_plaintext() {
    let app = spawn_app().await;
    let email = "secret.keeper@example.com";
    let token = app.signed_up(email).await;
    app.put(
        "/v1/me/password",
        json!({ "current_password": PASSWORD, "new_password": "second secret passphrase" }),
        &token,
    )
    .await;
    app.log_in_with(email, "a wrong guess for the log").await;
    let session = app.log_in_with(email, "second secret passphrase").await;
    let session: Value = session.json().await.expect("json");
    let session = session["token"].as_str().expect("token").to_string();
    let created: Value = app
        .post(
            "/v1/me/tokens",
            json!({ "name": "ci", "password": "second secret passphrase" }),
            Some(&session),
        )
        .await
        .json()
        .await
        .expect("json");
    let api_token = created["token"].as_str().expect("token").to_string();
    assert_eq!(app.api_as(&api_token).me().await.status(), 200);
    app.post("/v1/password-resets", json!({ "email": email }), None)
        .await;
    let reset = reset_token_in(&app.reset_mails().await[0]);
    app.post(
        "/v1/password-resets/confirm",
        json!({ "token": reset, "new_password": "third secret passphrase" }),
        None,
    )
    .await;

    let dump = dump_database(&app.pool).await;
    assert!(
        dump.contains("account.session.started"),
        "the dump has the log"
    );
    for secret in [
        PASSWORD,
        "second secret passphrase",
        "third secret passphrase",
        "a wrong guess for the log",
        token.as_str(),
        &token[4..],
        session.as_str(),
        &session[4..],
        api_token.as_str(),
        &api_token[4..],
        reset.as_str(),
        &reset[4..],
        email,
        "secret.keeper",
        "test laptop",
        "warden-tests/1.0",
        "127.0.0.1",
    ] {
        assert!(!dump.contains(secret), "{secret:?} is stored in plaintext");
    }
}
