//! Queue menu trees. Each channel has its own tree: menus branch, leaf queues take contacts.
//! The path from the root to a leaf ("Billing > Refunds") is the contact's issue.

use crate::ids::QueueId;
use crate::text::{Language, Name, TextError};
use std::collections::HashMap;
use std::fmt;

/// How deep a menu tree may go; deeper menus are a maze for callers.
pub const MAX_DEPTH: usize = 8;

/// A channel contacts arrive through. Each has its own menu tree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Channel {
    /// Phone calls through the IVR.
    Voice,
    /// Web chat through the consumer web SDK.
    Web,
    /// Chat from the mobile SDKs.
    Mobile,
    Sms,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::Voice, Channel::Web, Channel::Mobile, Channel::Sms];

    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Voice => "voice",
            Channel::Web => "web",
            Channel::Mobile => "mobile",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| TextError::Invalid {
                field: "channel",
                detail: format!(
                    "`{}` is not voice, web, mobile or sms",
                    text.chars().take(40).collect::<String>()
                ),
            })
    }

    /// Whether a contact on this channel takes an agent's call capacity (else chat capacity).
    pub const fn is_call(self) -> bool {
        matches!(self, Channel::Voice)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A menu (has children) or a leaf queue (takes contacts).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum QueueKind {
    Menu,
    Leaf,
}

impl QueueKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            QueueKind::Menu => "menu",
            QueueKind::Leaf => "leaf",
        }
    }

    pub fn parse(text: &str) -> Result<Self, TextError> {
        match text {
            "menu" => Ok(QueueKind::Menu),
            "leaf" => Ok(QueueKind::Leaf),
            other => Err(TextError::Invalid {
                field: "kind",
                detail: format!(
                    "`{}` is not menu or leaf",
                    other.chars().take(40).collect::<String>()
                ),
            }),
        }
    }
}

/// One node of a channel's menu tree.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QueueNode {
    pub id: QueueId,
    pub channel: Channel,
    /// The menu this node sits in; `None` for a top-level entry.
    pub parent: Option<QueueId>,
    pub name: Name,
    pub kind: QueueKind,
    /// Order among siblings (menu option order; IVR digit order).
    pub position: i32,
    /// Routing priority of contacts in this leaf; higher is served first.
    pub priority: i32,
    /// Languages this leaf serves; empty means any.
    pub languages: Vec<Language>,
}

/// Why a tree change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("parent queue {0} does not exist")]
    ParentNotFound(QueueId),
    #[error("parent queue is a leaf queue; only menus have children")]
    ParentIsLeaf,
    #[error("parent queue is on the {parent} channel, not {node}")]
    ChannelMismatch { parent: Channel, node: Channel },
    #[error("a sibling is already named `{0}`")]
    DuplicateName(String),
    #[error("a queue cannot be moved under itself or one of its descendants")]
    Cycle,
    #[error("menu trees are at most {MAX_DEPTH} levels deep")]
    TooDeep,
    #[error("the queue has children; remove or move them first")]
    HasChildren,
    #[error("the channel of an existing queue cannot change")]
    ChannelChange,
    #[error("queue {0} does not exist")]
    NotFound(QueueId),
    #[error("queue id {0} is used twice")]
    DuplicateId(QueueId),
}

/// A validated set of menu trees (all channels).
#[derive(Clone, Debug, Default)]
pub struct QueueTree {
    nodes: HashMap<QueueId, QueueNode>,
}

impl QueueTree {
    /// Builds the tree from stored nodes, checking every invariant.
    pub fn new(nodes: Vec<QueueNode>) -> Result<Self, TreeError> {
        let mut tree = QueueTree::default();
        for node in nodes {
            if tree.nodes.insert(node.id, node.clone()).is_some() {
                return Err(TreeError::DuplicateId(node.id));
            }
        }
        for node in tree.nodes.values() {
            tree.check_placement(node)?;
        }
        Ok(tree)
    }

    pub fn get(&self, id: QueueId) -> Option<&QueueNode> {
        self.nodes.get(&id)
    }

    pub fn nodes(&self) -> impl Iterator<Item = &QueueNode> {
        self.nodes.values()
    }

    /// The children of a menu (or the top level of a channel when `parent` is `None`),
    /// in menu order.
    pub fn children(&self, channel: Channel, parent: Option<QueueId>) -> Vec<&QueueNode> {
        let mut children: Vec<&QueueNode> = self
            .nodes
            .values()
            .filter(|n| n.channel == channel && n.parent == parent)
            .collect();
        children.sort_by(|a, b| (a.position, a.name.as_str()).cmp(&(b.position, b.name.as_str())));
        children
    }

    /// The path of names from the top of the tree, joined with " > " ("Billing > Refunds").
    pub fn path(&self, id: QueueId) -> Option<String> {
        let mut names = Vec::new();
        let mut cursor = Some(id);
        while let Some(current) = cursor {
            let node = self.nodes.get(&current)?;
            names.push(node.name.as_str());
            cursor = node.parent;
            if names.len() > MAX_DEPTH + 1 {
                return None;
            }
        }
        names.reverse();
        Some(names.join(" > "))
    }

    /// Checks that `node` may be added.
    pub fn check_insert(&self, node: &QueueNode) -> Result<(), TreeError> {
        if self.nodes.contains_key(&node.id) {
            return Err(TreeError::DuplicateId(node.id));
        }
        self.check_placement(node)
    }

    /// Checks that the stored node with `node.id` may be replaced by `node`.
    pub fn check_update(&self, node: &QueueNode) -> Result<(), TreeError> {
        let existing = self
            .nodes
            .get(&node.id)
            .ok_or(TreeError::NotFound(node.id))?;
        if existing.channel != node.channel {
            return Err(TreeError::ChannelChange);
        }
        if node.kind == QueueKind::Leaf && self.nodes.values().any(|n| n.parent == Some(node.id)) {
            return Err(TreeError::HasChildren);
        }
        // Moving under a descendant (or itself) would make a cycle.
        let mut cursor = node.parent;
        let mut steps = 0;
        while let Some(ancestor) = cursor {
            if ancestor == node.id {
                return Err(TreeError::Cycle);
            }
            cursor = self.nodes.get(&ancestor).and_then(|n| n.parent);
            steps += 1;
            if steps > MAX_DEPTH + 1 {
                return Err(TreeError::TooDeep);
            }
        }
        let mut moved = self.clone();
        moved.nodes.insert(node.id, node.clone());
        moved.check_placement(node)?;
        // The subtree under a moved menu must still fit the depth limit.
        let subtree_height = moved.height_below(node.id);
        if moved.depth(node.id)? + subtree_height > MAX_DEPTH {
            return Err(TreeError::TooDeep);
        }
        Ok(())
    }

    /// Checks that the node may be removed: it must exist and have no children.
    pub fn check_delete(&self, id: QueueId) -> Result<(), TreeError> {
        if !self.nodes.contains_key(&id) {
            return Err(TreeError::NotFound(id));
        }
        if self.nodes.values().any(|n| n.parent == Some(id)) {
            return Err(TreeError::HasChildren);
        }
        Ok(())
    }

    /// Checks the node against its parent and siblings (as they are in `self`).
    fn check_placement(&self, node: &QueueNode) -> Result<(), TreeError> {
        if let Some(parent_id) = node.parent {
            let parent = self
                .nodes
                .get(&parent_id)
                .ok_or(TreeError::ParentNotFound(parent_id))?;
            if parent.kind == QueueKind::Leaf {
                return Err(TreeError::ParentIsLeaf);
            }
            if parent.channel != node.channel {
                return Err(TreeError::ChannelMismatch {
                    parent: parent.channel,
                    node: node.channel,
                });
            }
        }
        let name_taken = self.nodes.values().any(|n| {
            n.id != node.id
                && n.channel == node.channel
                && n.parent == node.parent
                && n.name.as_str().eq_ignore_ascii_case(node.name.as_str())
        });
        if name_taken {
            return Err(TreeError::DuplicateName(node.name.to_string()));
        }
        if self.depth_of_parent_chain(node)? >= MAX_DEPTH {
            return Err(TreeError::TooDeep);
        }
        Ok(())
    }

    /// How many ancestors `node` has, following parents as stored in `self`.
    fn depth_of_parent_chain(&self, node: &QueueNode) -> Result<usize, TreeError> {
        let mut depth = 0;
        let mut cursor = node.parent;
        while let Some(ancestor) = cursor {
            if ancestor == node.id {
                return Err(TreeError::Cycle);
            }
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(TreeError::TooDeep);
            }
            cursor = self.nodes.get(&ancestor).and_then(|n| n.parent);
        }
        Ok(depth)
    }

    fn depth(&self, id: QueueId) -> Result<usize, TreeError> {
        let node = self.nodes.get(&id).ok_or(TreeError::NotFound(id))?;
        self.depth_of_parent_chain(node)
    }

    /// Levels below `id` (0 for a node without children).
    fn height_below(&self, id: QueueId) -> usize {
        self.nodes
            .values()
            .filter(|n| n.parent == Some(id))
            .map(|child| 1 + self.height_below(child.id))
            .max()
            .unwrap_or(0)
    }
}
