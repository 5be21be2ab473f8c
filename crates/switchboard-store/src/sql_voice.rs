//! Row decoders for voice (trunks, dialled numbers, call records), shared by both backends;
//! instantiated inside `impl_store!`.

macro_rules! voice_sql_helpers {
    ($row:ty) => {
        const TRUNK_COLUMNS: &str =
            "id, name, direction, addresses, username, secret, host, port, tcp, caller_id, dial_rules";
        const CALL_COLUMNS: &str = "id, caller, did, ivr_path, queue_id, agent_id, contact_id, started_at, queued_at, \
             ringing_at, answered_at, ended_at, disposition, ended_by, transfers, rtp_from_caller, rtp_to_caller, rtp_from_agent, rtp_to_agent";

        fn trunk_from_row(row: &$row) -> StoreResult<switchboard_core::voice::Trunk> {
            use switchboard_core::voice::{PhoneNumber, Trunk, TrunkDirection};
            let addresses: String = row.try_get("addresses")?;
            let caller_id: Option<String> = row.try_get("caller_id")?;
            let port: Option<i32> = row.try_get("port")?;
            Ok(Trunk {
                id: codec::id(&row.try_get::<String, _>("id")?, switchboard_core::TrunkId::parse)?,
                name: Name::parse("name", &row.try_get::<String, _>("name")?).map_err(codec::corrupt)?,
                direction: TrunkDirection::parse(&row.try_get::<String, _>("direction")?).map_err(codec::corrupt)?,
                addresses: codec::networks(&addresses)?,
                username: row.try_get("username")?,
                secret: row.try_get("secret")?,
                host: row.try_get("host")?,
                port: port.map(|p| u16::try_from(p).map_err(codec::corrupt)).transpose()?,
                tcp: row.try_get("tcp")?,
                caller_id: caller_id
                    .as_deref()
                    .map(|c| PhoneNumber::parse("caller_id", c))
                    .transpose()
                    .map_err(codec::corrupt)?,
                dial_rules: codec::dial_rules(&row.try_get::<String, _>("dial_rules")?)?,
            })
        }

        fn call_from_row(row: &$row) -> StoreResult<switchboard_core::voice::CallRecord> {
            use switchboard_core::voice::{CallRecord, Disposition};
            let transfers: String = row.try_get("transfers")?;
            Ok(CallRecord {
                id: codec::id(&row.try_get::<String, _>("id")?, switchboard_core::CallId::parse)?,
                caller: row.try_get("caller")?,
                did: row.try_get("did")?,
                ivr_path: row.try_get("ivr_path")?,
                queue: opt_id(row, "queue_id", QueueId::parse)?,
                agent: opt_id(row, "agent_id", UserId::parse)?,
                contact: opt_id(row, "contact_id", ContactId::parse)?,
                started_at: codec::time(row.try_get("started_at")?)?,
                queued_at: codec::opt_time(row.try_get("queued_at")?)?,
                ringing_at: codec::opt_time(row.try_get("ringing_at")?)?,
                answered_at: codec::opt_time(row.try_get("answered_at")?)?,
                ended_at: codec::opt_time(row.try_get("ended_at")?)?,
                disposition: Disposition::parse(&row.try_get::<String, _>("disposition")?).map_err(codec::corrupt)?,
                ended_by: row.try_get("ended_by")?,
                transfers: serde_json::from_str(&transfers).map_err(codec::corrupt)?,
                rtp: switchboard_core::voice::RtpCounts {
                    from_caller: codec::count(row.try_get("rtp_from_caller")?)?,
                    to_caller: codec::count(row.try_get("rtp_to_caller")?)?,
                    from_agent: codec::count(row.try_get("rtp_from_agent")?)?,
                    to_agent: codec::count(row.try_get("rtp_to_agent")?)?,
                },
            })
        }
    };
}

pub(crate) use voice_sql_helpers;
