# agentsys tests
