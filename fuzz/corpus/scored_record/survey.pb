
s1acme"team-1@‡ ≠æ†4P	`Ù