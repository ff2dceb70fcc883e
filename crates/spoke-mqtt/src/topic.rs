//! Topic names and topic filters (MQTT 3.1.1 §4.7): validation and matching.
//!
//! Pure functions on `&str`; used by the codec (to reject malformed PUBLISH and SUBSCRIBE
//! packets) and by the session (to route outbound messages to subscriptions).
//!
//! Invariants checked here:
//! - a topic name or filter is at least one character long (§4.7.3) and has no U+0000
//!   (§1.5.3; the codec checks the latter for every string);
//! - a topic name contains no wildcard (§3.3.2.1, §4.7.1);
//! - in a filter, `#` stands alone in the last level and `+` stands alone in its level
//!   (§4.7.1.2, §4.7.1.3).

/// Why a topic name or filter is invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Zero-length topic (MQTT 3.1.1 §4.7.3).
    #[error("empty topic")]
    Empty,
    /// A wildcard in a topic name (MQTT 3.1.1 §3.3.2.1).
    #[error("wildcard in a topic name")]
    Wildcard,
    /// `#` not alone in the last level, or `+` not alone in its level (MQTT 3.1.1 §4.7.1).
    #[error("misplaced wildcard in a topic filter")]
    MisplacedWildcard,
    /// U+0000 in the topic (MQTT 3.1.1 §1.5.3).
    #[error("U+0000 in a topic")]
    NullCharacter,
    /// Longer than the 65,535 bytes a UTF-8 string can hold on the wire (MQTT 3.1.1 §1.5.3).
    #[error("topic longer than 65535 bytes")]
    TooLong,
}

/// Checks a topic name as used in PUBLISH (MQTT 3.1.1 §4.7.3, §3.3.2.1).
pub fn validate_name(topic: &str) -> Result<(), TopicError> {
    check_common(topic)?;
    if topic.bytes().any(|b| b == b'+' || b == b'#') {
        return Err(TopicError::Wildcard);
    }
    Ok(())
}

/// Checks a topic filter as used in SUBSCRIBE and UNSUBSCRIBE (MQTT 3.1.1 §4.7.1, §4.7.3).
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        match level {
            "#" if is_last => {}
            "+" => {}
            _ if level.contains(['+', '#']) => return Err(TopicError::MisplacedWildcard),
            "#" => return Err(TopicError::MisplacedWildcard),
            _ => {}
        }
    }
    Ok(())
}

fn check_common(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > usize::from(u16::MAX) {
        return Err(TopicError::TooLong);
    }
    if topic.contains('\0') {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// Whether `topic` (a valid topic name) matches `filter` (a valid topic filter).
///
/// `+` matches exactly one level (possibly empty), `#` matches the parent level and any number
/// of child levels (MQTT 3.1.1 §4.7.1.2), and a filter starting with a wildcard does not match a
/// topic starting with `$` (§4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut topic_levels = topic.split('/');
    for filter_level in filter.split('/') {
        if filter_level == "#" {
            return true;
        }
        match topic_levels.next() {
            Some(level) if filter_level == "+" || filter_level == level => {}
            _ => return false,
        }
    }
    topic_levels.next().is_none()
}

/// Whether `filter` covers `requested` (both valid topic filters): every topic name that
/// `requested` matches, `filter` matches too. Used to authorize a SUBSCRIBE against allowed
/// filters: `a/#` covers `a/b/+` and `a/#`, `a/+` covers `a/b` and `a/+` but not `a/#`.
pub fn covers(filter: &str, requested: &str) -> bool {
    if requested.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut requested_levels = requested.split('/');
    for filter_level in filter.split('/') {
        if filter_level == "#" {
            return true;
        }
        match requested_levels.next() {
            Some("#") | None => return false,
            Some(level) if filter_level == "+" || filter_level == level => {}
            Some(_) => return false,
        }
    }
    requested_levels.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_of_filters() {
        for (filter, requested) in [
            ("#", "a/b"),
            ("#", "#"),
            ("a/#", "a/#"),
            ("a/#", "a/b/+"),
            ("a/#", "a"),
            ("a/+", "a/b"),
            ("a/+", "a/+"),
            ("a/+/c", "a/+/c"),
            ("a/b", "a/b"),
        ] {
            assert!(covers(filter, requested), "{filter} covers {requested}");
        }
        for (filter, requested) in [
            ("a/+", "a/#"),
            ("a/b", "a/+"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
            ("a/#", "b/#"),
            ("a/#", "+/b"),
            ("a/#", "#"),
            ("+", "+/+"),
            ("#", "$SYS/#"),
        ] {
            assert!(
                !covers(filter, requested),
                "{filter} does not cover {requested}"
            );
        }
    }

    #[test]
    fn names() {
        assert_eq!(validate_name("a/b"), Ok(()));
        assert_eq!(validate_name("/"), Ok(()));
        assert_eq!(validate_name("devices/d/messages/events/"), Ok(()));
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+"), Err(TopicError::Wildcard));
        assert_eq!(validate_name("a/#"), Err(TopicError::Wildcard));
        assert_eq!(validate_name("a\0"), Err(TopicError::NullCharacter));
        assert_eq!(validate_name(&"x".repeat(65_536)), Err(TopicError::TooLong));
    }

    #[test]
    fn filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "+/+",
            "a/+/b",
            "/#",
            "$iothub/twin/res/#",
            "a//b",
            "+/",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        for bad in ["a#", "a/#/b", "#/", "a+", "+a/b", "a/b+", "##", ""] {
            assert!(validate_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_table() {
        // (filter, topic, expected) — examples from MQTT 3.1.1 §4.7.1 and §4.7.2.
        let cases = [
            ("sport/tennis/player1/#", "sport/tennis/player1", true),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/ranking",
                true,
            ),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
                true,
            ),
            ("sport/#", "sport", true),
            ("#", "a/b/c", true),
            ("#", "/", true),
            ("sport/tennis/+", "sport/tennis/player1", true),
            ("sport/tennis/+", "sport/tennis/player1/ranking", false),
            ("sport/+", "sport", false),
            ("sport/+", "sport/", true),
            ("+/+", "/finance", true),
            ("/+", "/finance", true),
            ("+", "/finance", false),
            ("a/b", "a/b", true),
            ("a/b", "a/b/c", false),
            ("a/b/c", "a/b", false),
            ("#", "$SYS/x", false),
            ("+/monitor/Clients", "$SYS/monitor/Clients", false),
            ("$SYS/#", "$SYS/monitor/Clients", true),
            ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
            ("$iothub/twin/res/#", "$iothub/twin/res/200/?$rid=1", true),
            (
                "$iothub/methods/POST/#",
                "$iothub/methods/POST/reboot/?$rid=1",
                true,
            ),
            (
                "devices/d/messages/devicebound/#",
                "devices/d/messages/devicebound/",
                true,
            ),
            (
                "devices/d/messages/devicebound/#",
                "devices/d/messages/devicebound",
                true,
            ),
            (
                "devices/d/messages/devicebound/#",
                "devices/e/messages/devicebound/x",
                false,
            ),
        ];
        for (filter, topic, expected) in cases {
            assert_eq!(matches(filter, topic), expected, "{filter} vs {topic}");
        }
    }
}
