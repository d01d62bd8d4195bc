//! `topicguard diff` (in progress).
