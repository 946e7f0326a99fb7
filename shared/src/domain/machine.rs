//! The action state machine: every state an action can be in, every event that may move it,
//! and — in one table, [`transition`] — which moves are allowed. Nothing else in the code
//! changes an action's state: ceremonies, the Server API's `updateAction` and track all ask
//! this table, and a refused move is an error (never a silent success).
//!
//! The rules, as the table says them:
//! - **Track** starts an action in the state its rules chose (`ALLOW`, `CHALLENGE_REQUIRED`,
//!   `REVIEW_REQUIRED` or `BLOCK`). A usernameless passkey sign-in, which has no tracked action,
//!   creates one directly in `CHALLENGE_SUCCEEDED`.
//! - **Ceremonies** (passkey, security key, TOTP, email OTP, recovery code) move only
//!   `CHALLENGE_REQUIRED → CHALLENGE_SUCCEEDED | CHALLENGE_FAILED`. `CHALLENGE_FAILED` is final
//!   for ceremonies: another method on the same action does not get fresh guesses; a new track
//!   starts a new action. `ALLOW`, `BLOCK` and the `REVIEW_*` states are never changed by a
//!   ceremony.
//! - **The Server API** (`updateAction`, the tenant's own backend with its secret key) may make
//!   the moves in [`SERVER_MOVES`]; `BLOCK` is final for it too. Setting the state an action
//!   already has is a no-op, not a move.
use serde::{Deserialize, Serialize};
use std::fmt;

/// `UserActionState` (docs/wire.md §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionState {
    Allow,
    Block,
    ChallengeRequired,
    ChallengeSucceeded,
    ChallengeFailed,
    ReviewRequired,
    ReviewSucceeded,
    ReviewFailed,
}

impl ActionState {
    pub const ALL: [ActionState; 8] = [
        ActionState::Allow,
        ActionState::Block,
        ActionState::ChallengeRequired,
        ActionState::ChallengeSucceeded,
        ActionState::ChallengeFailed,
        ActionState::ReviewRequired,
        ActionState::ReviewSucceeded,
        ActionState::ReviewFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Allow => "ALLOW",
            ActionState::Block => "BLOCK",
            ActionState::ChallengeRequired => "CHALLENGE_REQUIRED",
            ActionState::ChallengeSucceeded => "CHALLENGE_SUCCEEDED",
            ActionState::ChallengeFailed => "CHALLENGE_FAILED",
            ActionState::ReviewRequired => "REVIEW_REQUIRED",
            ActionState::ReviewSucceeded => "REVIEW_SUCCEEDED",
            ActionState::ReviewFailed => "REVIEW_FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for ActionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `VerificationMethod` (docs/wire.md §7): the methods Latchkey verifies itself, and those a tenant
/// may enroll as already verified through the Server API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerificationMethod {
    Passkey,
    SecurityKey,
    AuthenticatorApp,
    EmailOtp,
    EmailMagicLink,
    Sms,
    Whatsapp,
    RecoveryCode,
}

impl VerificationMethod {
    pub const ALL: [VerificationMethod; 8] = [
        VerificationMethod::Passkey,
        VerificationMethod::SecurityKey,
        VerificationMethod::AuthenticatorApp,
        VerificationMethod::EmailOtp,
        VerificationMethod::EmailMagicLink,
        VerificationMethod::Sms,
        VerificationMethod::Whatsapp,
        VerificationMethod::RecoveryCode,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            VerificationMethod::Passkey => "PASSKEY",
            VerificationMethod::SecurityKey => "SECURITY_KEY",
            VerificationMethod::AuthenticatorApp => "AUTHENTICATOR_APP",
            VerificationMethod::EmailOtp => "EMAIL_OTP",
            VerificationMethod::EmailMagicLink => "EMAIL_MAGIC_LINK",
            VerificationMethod::Sms => "SMS",
            VerificationMethod::Whatsapp => "WHATSAPP",
            VerificationMethod::RecoveryCode => "RECOVERY_CODE",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// A strong factor: a passkey, a security key or an authenticator app (NIST SP 800-63B
    /// multi-factor or single-factor cryptographic / OTP device). Email, SMS and recovery codes
    /// are not: they can be intercepted or are a fallback.
    pub fn is_strong(self) -> bool {
        matches!(
            self,
            VerificationMethod::Passkey
                | VerificationMethod::SecurityKey
                | VerificationMethod::AuthenticatorApp
        )
    }
}

impl fmt::Display for VerificationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What asks to move an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A ceremony on the action verified the user.
    CeremonySucceeded,
    /// A ceremony on the action refused the user for good (a bad assertion, the last attempt).
    CeremonyFailed,
    /// The tenant's backend set a state through the Server API.
    ServerUpdate(ActionState),
}

/// The moves `updateAction` may make, from → to. Self-moves are no-ops and not listed.
pub const SERVER_MOVES: &[(ActionState, &[ActionState])] = {
    use ActionState::*;
    &[
        (Allow, &[ChallengeRequired, ReviewRequired, Block]),
        (
            ChallengeRequired,
            &[
                Allow,
                ChallengeSucceeded,
                ChallengeFailed,
                ReviewRequired,
                Block,
            ],
        ),
        (ChallengeSucceeded, &[ReviewRequired, Block]),
        (ChallengeFailed, &[ReviewRequired, Block]),
        (ReviewRequired, &[ReviewSucceeded, ReviewFailed, Block]),
        (ReviewSucceeded, &[Block]),
        (ReviewFailed, &[Block]),
        (Block, &[]),
    ]
};

/// A move the table does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub from: ActionState,
    pub event: Event,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.event {
            Event::CeremonySucceeded | Event::CeremonyFailed => write!(
                f,
                "The action is {}: only an action in CHALLENGE_REQUIRED can be answered by a \
                 challenge; track a new action.",
                self.from
            ),
            Event::ServerUpdate(to) => {
                let allowed: Vec<&str> =
                    server_moves(self.from).iter().map(|s| s.as_str()).collect();
                write!(
                    f,
                    "An action in {} cannot be set to {to} (allowed: {}).",
                    self.from,
                    if allowed.is_empty() {
                        "none, it is final".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                )
            }
        }
    }
}

fn server_moves(from: ActionState) -> &'static [ActionState] {
    SERVER_MOVES
        .iter()
        .find(|(f, _)| *f == from)
        .map(|(_, to)| *to)
        .unwrap_or(&[])
}

/// The one transition table. `Ok(to)` is the state after the event; `Ok(from)` for a no-op.
pub fn transition(from: ActionState, event: Event) -> Result<ActionState, Refused> {
    use ActionState::*;
    let refused = Refused { from, event };
    match (from, event) {
        (ChallengeRequired, Event::CeremonySucceeded) => Ok(ChallengeSucceeded),
        (ChallengeRequired, Event::CeremonyFailed) => Ok(ChallengeFailed),
        (_, Event::CeremonySucceeded | Event::CeremonyFailed) => Err(refused),
        (_, Event::ServerUpdate(to)) if to == from => Ok(from),
        (_, Event::ServerUpdate(to)) if server_moves(from).contains(&to) => Ok(to),
        (_, Event::ServerUpdate(_)) => Err(refused),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ActionState::*;

    /// Every cell of the ceremony columns.
    #[test]
    fn ceremonies_move_only_challenge_required() {
        for from in ActionState::ALL {
            for (event, to) in [
                (Event::CeremonySucceeded, ChallengeSucceeded),
                (Event::CeremonyFailed, ChallengeFailed),
            ] {
                let got = transition(from, event);
                if from == ChallengeRequired {
                    assert_eq!(got, Ok(to));
                } else {
                    assert_eq!(got, Err(Refused { from, event }), "{from} {event:?}");
                }
            }
        }
    }

    /// Every cell of the Server API column: 8 × 8.
    #[test]
    fn server_updates_follow_the_table_cell_by_cell() {
        let expected_allowed = |from: ActionState, to: ActionState| -> bool {
            from == to
                || match from {
                    Allow => matches!(to, ChallengeRequired | ReviewRequired | Block),
                    ChallengeRequired => !matches!(to, ReviewSucceeded | ReviewFailed),
                    ChallengeSucceeded | ChallengeFailed => matches!(to, ReviewRequired | Block),
                    ReviewRequired => matches!(to, ReviewSucceeded | ReviewFailed | Block),
                    ReviewSucceeded | ReviewFailed => to == Block,
                    Block => false,
                }
        };
        let mut allowed = 0;
        for from in ActionState::ALL {
            for to in ActionState::ALL {
                let got = transition(from, Event::ServerUpdate(to));
                if expected_allowed(from, to) {
                    assert_eq!(got, Ok(to), "{from} -> {to}");
                    allowed += 1;
                } else {
                    assert!(got.is_err(), "{from} -> {to} must be refused");
                }
            }
        }
        assert_eq!(allowed, 8 + 3 + 5 + 2 + 2 + 3 + 1 + 1);
    }

    #[test]
    fn no_server_update_reaches_challenge_succeeded_except_from_challenge_required() {
        for from in ActionState::ALL {
            let ok = transition(from, Event::ServerUpdate(ChallengeSucceeded)).is_ok();
            assert_eq!(ok, matches!(from, ChallengeRequired | ChallengeSucceeded));
        }
    }

    #[test]
    fn wire_strings_round_trip() {
        for s in ActionState::ALL {
            assert_eq!(ActionState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        for m in VerificationMethod::ALL {
            assert_eq!(VerificationMethod::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        assert_eq!(ActionState::parse("DONE"), None);
    }

    #[test]
    fn refusals_say_what_is_allowed() {
        let e = transition(Block, Event::ServerUpdate(Allow)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "An action in BLOCK cannot be set to ALLOW (allowed: none, it is final)."
        );
        let e = transition(Block, Event::CeremonySucceeded).unwrap_err();
        assert!(e.to_string().starts_with("The action is BLOCK"));
    }
}
