//! Who may see a conversation. Anything a principal may not see is reported as "not found", so
//! ids of other tenants' conversations reveal nothing.

use super::Principal;

/// Where an operator may work: their company, and the branches they are assigned to (none means
/// the whole company).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorScope {
    pub company_id: i64,
    pub branch_ids: Vec<i64>,
}

impl OperatorScope {
    pub fn covers(&self, company_id: i64, branch_id: Option<i64>) -> bool {
        if company_id != self.company_id {
            return false;
        }
        self.branch_ids.is_empty() || branch_id.is_some_and(|b| self.branch_ids.contains(&b))
    }
}

/// May `principal` (with `scope` when an operator) see the conversation of `customer_id` with
/// `company_id`/`branch_id`?
pub fn can_access(
    principal: Principal,
    scope: Option<&OperatorScope>,
    customer_id: i64,
    company_id: i64,
    branch_id: Option<i64>,
) -> bool {
    match principal {
        Principal::Customer { id } => id == customer_id,
        Principal::Operator { .. } => scope.is_some_and(|s| s.covers(company_id, branch_id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customers_see_only_their_own_conversations() {
        let me = Principal::Customer { id: 1 };
        assert!(can_access(me, None, 1, 10, None));
        assert!(!can_access(me, None, 2, 10, None));
    }

    #[test]
    fn operators_see_their_company_and_only_their_branches_when_assigned() {
        let op = Principal::Operator { id: 5 };
        let whole = OperatorScope {
            company_id: 10,
            branch_ids: vec![],
        };
        let branch = OperatorScope {
            company_id: 10,
            branch_ids: vec![100],
        };
        assert!(can_access(op, Some(&whole), 1, 10, None));
        assert!(can_access(op, Some(&whole), 1, 10, Some(101)));
        assert!(!can_access(op, Some(&whole), 1, 11, None));
        assert!(can_access(op, Some(&branch), 1, 10, Some(100)));
        assert!(!can_access(op, Some(&branch), 1, 10, Some(101)));
        assert!(!can_access(op, Some(&branch), 1, 10, None));
        assert!(!can_access(op, None, 1, 10, None));
    }
}
