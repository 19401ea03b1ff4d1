"""Transfer backend: storage, the approval-chain rules of the seed FAQ, demo data."""
