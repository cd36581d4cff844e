
 2dfbfe7b3d74d1a8037e7382895bc4caacmebilling"a-17*c-12308€Âä¾ 4@€Âä¾ 4RHow can I help? °	