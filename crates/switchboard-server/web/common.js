// Helpers shared by the chat widget and the agent adapter. Served at /widget/common.js, which
// the widget imports relative to its own address (so it works from any site).

/// An element with attributes (`on…` names set handlers; `true` sets a bare attribute, and
/// false, null and undefined leave it out) and children.
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name.startsWith('on')) node[name] = value;
    else if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? '' : value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

/// A client id for a message (unique per sender within a chat; see docs/chat-protocol.md).
export function newClientId(prefix) {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `${prefix}-${Date.now().toString(36)}-${random[0].toString(36)}${random[1].toString(36)}`;
}
