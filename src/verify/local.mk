# bluegreen-verify: the exactly-once verifier
