use crate::uuid;
use switchboard_core::{
    Channel, Language, Name, QueueId, QueueKind, QueueNode, QueueTree, TreeError,
};

fn node(n: u64, channel: Channel, parent: Option<u64>, name: &str, kind: QueueKind) -> QueueNode {
    QueueNode {
        id: QueueId::from_uuid(uuid(n)),
        channel,
        parent: parent.map(|p| QueueId::from_uuid(uuid(p))),
        name: Name::parse("name", name).unwrap(),
        kind,
        position: n as i32,
        priority: 0,
        languages: vec![],
    }
}

fn demo_tree() -> QueueTree {
    QueueTree::new(vec![
        node(1, Channel::Web, None, "Billing", QueueKind::Menu),
        node(2, Channel::Web, Some(1), "Refunds", QueueKind::Leaf),
        node(3, Channel::Web, Some(1), "Invoices", QueueKind::Leaf),
        node(4, Channel::Voice, None, "Sales", QueueKind::Leaf),
    ])
    .expect("valid tree")
}

#[test]
fn a_leaf_path_is_the_issue() {
    let tree = demo_tree();
    assert_eq!(
        tree.path(QueueId::from_uuid(uuid(2))).unwrap(),
        "Billing > Refunds"
    );
    assert_eq!(tree.path(QueueId::from_uuid(uuid(4))).unwrap(), "Sales");
    let names: Vec<_> = tree
        .children(Channel::Web, Some(QueueId::from_uuid(uuid(1))))
        .iter()
        .map(|n| n.name.to_string())
        .collect();
    assert_eq!(names, ["Refunds", "Invoices"]);
}

#[test]
fn tree_changes_that_break_it_are_refused() {
    let tree = demo_tree();
    let cases = [
        (
            node(9, Channel::Web, Some(2), "Under a leaf", QueueKind::Leaf),
            TreeError::ParentIsLeaf,
        ),
        (
            node(9, Channel::Voice, Some(1), "Wrong channel", QueueKind::Leaf),
            TreeError::ChannelMismatch {
                parent: Channel::Web,
                node: Channel::Voice,
            },
        ),
        (
            node(9, Channel::Web, Some(1), "refunds", QueueKind::Leaf),
            TreeError::DuplicateName("refunds".into()),
        ),
        (
            node(9, Channel::Web, Some(77), "Orphan", QueueKind::Leaf),
            TreeError::ParentNotFound(QueueId::from_uuid(uuid(77))),
        ),
    ];
    for (candidate, expected) in cases {
        assert_eq!(tree.check_insert(&candidate), Err(expected));
    }
    // The same name on another channel or under another parent is fine.
    assert!(tree
        .check_insert(&node(9, Channel::Voice, None, "Billing", QueueKind::Menu))
        .is_ok());
    // Moving a menu under its own child is a cycle; turning a menu with children into a leaf is refused.
    let mut moved = node(1, Channel::Web, Some(3), "Billing", QueueKind::Menu);
    assert_eq!(
        tree.check_update(&moved),
        Err(TreeError::Cycle),
        "Invoices is Billing's own child"
    );
    assert_eq!(
        tree.check_update(&node(4, Channel::Voice, None, "Sales", QueueKind::Menu)),
        Ok(())
    );
    let under_leaf = node(3, Channel::Web, Some(2), "Invoices", QueueKind::Leaf);
    assert_eq!(tree.check_update(&under_leaf), Err(TreeError::ParentIsLeaf));
    let tree = QueueTree::new(vec![
        node(1, Channel::Web, None, "A", QueueKind::Menu),
        node(2, Channel::Web, Some(1), "B", QueueKind::Menu),
    ])
    .unwrap();
    moved = node(1, Channel::Web, Some(2), "A", QueueKind::Menu);
    assert_eq!(tree.check_update(&moved), Err(TreeError::Cycle));
    assert_eq!(
        tree.check_update(&node(1, Channel::Web, None, "A", QueueKind::Leaf)),
        Err(TreeError::HasChildren)
    );
    assert_eq!(
        tree.check_update(&node(1, Channel::Sms, None, "A", QueueKind::Menu)),
        Err(TreeError::ChannelChange)
    );
    assert_eq!(
        tree.check_delete(QueueId::from_uuid(uuid(1))),
        Err(TreeError::HasChildren)
    );
    assert!(tree.check_delete(QueueId::from_uuid(uuid(2))).is_ok());
}

#[test]
fn trees_are_at_most_eight_levels_deep() {
    let mut nodes = vec![node(1, Channel::Web, None, "L1", QueueKind::Menu)];
    for n in 2..=8 {
        nodes.push(node(
            n,
            Channel::Web,
            Some(n - 1),
            &format!("L{n}"),
            QueueKind::Menu,
        ));
    }
    let tree = QueueTree::new(nodes).unwrap();
    assert_eq!(
        tree.check_insert(&node(9, Channel::Web, Some(8), "L9", QueueKind::Leaf)),
        Err(TreeError::TooDeep)
    );
    assert!(tree
        .check_insert(&node(9, Channel::Web, Some(7), "L8b", QueueKind::Leaf))
        .is_ok());
}

#[test]
fn language_tags_normalise() {
    assert_eq!(Language::parse("en-us").unwrap().as_str(), "en-US");
    assert_eq!(Language::parse("FR").unwrap().as_str(), "fr");
    for bad in ["", "e", "english", "en-", "en-US-!"] {
        assert!(Language::parse(bad).is_err(), "{bad:?}");
    }
}
