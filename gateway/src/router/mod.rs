//! Routing: skill groups, rules, assignment, queue, explain (being written).
