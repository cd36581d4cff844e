
e-1acmebilling"a-17*c-12308€Âä¾ 4@€Âä¾ 4ZO Ñ¸‘ (à§0àÔRThird time calling!RSorry, let me fix it.  