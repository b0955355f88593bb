"""Deterministic orchestration: teams as chains, long-lived sessions, approvals, sub-teams."""
