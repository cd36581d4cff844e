
X
 60f758a0d031e444a2bc2097fb7d1e18acmebilling"a-17*c-12308€Âä¾ 4@€Âä¾ 4Rhi
R
 2ed4db9ec519107c831e23e3cf8caa2cacmebilling"a-17*c-12308€Âä¾ 4@€Âä¾ 4b