#pragma once
// QCustomPlot for a build with QT_NO_KEYWORDS: its header says `signals:` and `foreach`,
// which that setting removes, so they are mapped to Q_SIGNALS / Q_FOREACH around the include.
#define signals Q_SIGNALS
#define foreach Q_FOREACH
#include <qcustomplot.h>
#undef foreach
#undef signals
