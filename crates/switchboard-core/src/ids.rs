//! Typed identifiers. They wrap UUIDs (the shell makes them; the core never does) so that a
//! queue id can never be passed where a user id is meant.

use std::fmt;
use uuid::Uuid;

/// An identifier that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid id")]
pub struct IdError(pub String);

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID made by the caller.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// Parses the hyphenated text form used on the wire and in storage.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                Uuid::try_parse(text).map(Self).map_err(|_| IdError(text.chars().take(64).collect()))
            }

            /// The UUID inside.
            pub const fn uuid(self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }
    };
}

id_type!(
    /// A portal user: admin, manager, supervisor, agent or trainee.
    UserId
);
id_type!(
    /// A team of users; managers act on the teams assigned to them.
    TeamId
);
id_type!(
    /// A node of a queue menu tree (a menu or a leaf queue).
    QueueId
);
id_type!(
    /// A capacity profile: how many chats and calls an agent takes at once.
    CapacityProfileId
);
id_type!(
    /// A contact (a call, chat, SMS conversation or callback request) waiting or in progress.
    ContactId
);
id_type!(
    /// A chat message.
    MessageId
);
id_type!(
    /// A file attached to a chat.
    AttachmentId
);
id_type!(
    /// A consumer's browser or app before (and after) they identify themselves (UAC-1).
    VisitorId
);
id_type!(
    /// A consumer known to the embedding site (from a verified identity token).
    IdentityId
);
id_type!(
    /// A CRM ticket.
    TicketId
);
id_type!(
    /// A background job row.
    JobId
);
id_type!(
    /// A phone call's record (call history).
    CallId
);
id_type!(
    /// A SIP trunk to or from a carrier.
    TrunkId
);
id_type!(
    /// A call recording: one agent's conversation with the caller, as a stereo file.
    RecordingId
);
id_type!(
    /// A site: a place agents work from, with the civic address an emergency call sends.
    SiteId
);
id_type!(
    /// A callback: a consumer to be called back at a chosen slot, or in their turn.
    CallbackId
);
