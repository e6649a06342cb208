//! The reporting PIN.

use super::fixtures::*;

#[tokio::test]
async fn a_right_pin_unlocks_for_fifteen_minutes_and_five_wrong_ones_lock_it() {
    let base = vec![registered(), session_started(1, now()), pin_set()];
    framework()
        .given(base.clone())
        .when_async(verify_pin("4321"))
        .await
        .then_expect_events(vec![AccountEvent::PinVerified {
            session_id: session_id(1),
            unlocked_until: now() + Duration::minutes(15),
            at: now(),
        }]);
    let mut given = base.clone();
    for n in 1..=4 {
        given.push(AccountEvent::PinCheckFailed {
            session_id: session_id(1),
            consecutive_failures: n,
            at: now(),
        });
    }
    framework()
        .given(given.clone())
        .when_async(verify_pin("0000"))
        .await
        .then_expect_events(vec![
            AccountEvent::PinCheckFailed {
                session_id: session_id(1),
                consecutive_failures: 5,
                at: now(),
            },
            AccountEvent::PinLocked {
                until: now() + Duration::minutes(15),
                at: now(),
            },
        ]);
    given.push(AccountEvent::PinLocked {
        until: now() + Duration::minutes(15),
        at: now(),
    });
    framework()
        .given(given.clone())
        .when_async(verify_pin("4321"))
        .await
        .then_expect_error(AccountError::PinLocked {
            until: now() + Duration::minutes(15),
        });
    let mut expired = base;
    expired.push(AccountEvent::PinLocked {
        until: now() - Duration::seconds(1),
        at: now() - Duration::minutes(15),
    });
    let events = framework()
        .given(expired)
        .when_async(verify_pin("4321"))
        .await
        .inspect_result()
        .expect("the lock has ended");
    assert!(matches!(
        events.as_slice(),
        [AccountEvent::PinVerified { .. }]
    ));
}
