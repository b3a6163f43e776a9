// aqlm-studio: the desktop application. See docs/studio.md.
#include <QApplication>

#include "app/studio/studio_app.h"

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  return aqlm::studio::run_studio(app);
}
