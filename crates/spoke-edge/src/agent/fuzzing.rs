//! Fuzz entry points for the agent's parsers (STYLE.md §10). Each must never panic on any
//! input; where a parser has a formatter, the round trip is asserted.

use super::state::AgentState;

/// A stored [`AgentState`]: read it, and if it reads, write it and read it back to an equal
/// state.
pub fn fuzz_agent_state(data: &[u8]) {
    let Ok(state) = AgentState::from_json(data) else {
        return;
    };
    let written = state
        .to_json()
        .expect("a state read from JSON can be written");
    let reread = AgentState::from_json(&written).expect("a written state reads back");
    assert_eq!(reread, state, "agent state round trip");
}
