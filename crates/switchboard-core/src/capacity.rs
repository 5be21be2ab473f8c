//! Capacity profiles: how many contacts an agent handles at once.

use crate::ids::CapacityProfileId;
use crate::text::{Name, TextError};

/// The most chats a profile may allow at once.
pub const MAX_CHATS: u16 = 50;
/// The most calls a profile may allow at once: a person talks on one call at a time.
pub const MAX_CALLS: u16 = 1;

/// How many chats and calls an agent takes at once, and whether they may call out.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CapacityProfile {
    pub id: CapacityProfileId,
    pub name: Name,
    max_chats: u16,
    max_calls: u16,
    /// Whether the profile includes a voice outbound profile (required to dial out, EMG-1).
    pub voice_outbound: bool,
}

impl CapacityProfile {
    pub fn new(
        id: CapacityProfileId,
        name: Name,
        max_chats: u16,
        max_calls: u16,
        voice_outbound: bool,
    ) -> Result<Self, TextError> {
        if max_chats > MAX_CHATS {
            return Err(TextError::Invalid {
                field: "max_chats",
                detail: format!("{max_chats} is more than {MAX_CHATS}"),
            });
        }
        if max_calls > MAX_CALLS {
            return Err(TextError::Invalid {
                field: "max_calls",
                detail: format!("{max_calls} is more than {MAX_CALLS}"),
            });
        }
        Ok(Self {
            id,
            name,
            max_chats,
            max_calls,
            voice_outbound,
        })
    }

    pub fn max_chats(&self) -> u16 {
        self.max_chats
    }

    pub fn max_calls(&self) -> u16 {
        self.max_calls
    }

    /// What an agent with no profile gets: one call, one chat, no outbound.
    pub fn default_limits() -> (u16, u16) {
        (1, 1)
    }
}
