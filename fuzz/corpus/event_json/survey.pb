
 2b70bc8de7d260c7542c265d5c262e75acmebilling"a-17*c-12308€Âä¾ 4@€Âä¾ 4b	cafÃ© great