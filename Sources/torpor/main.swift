import Foundation
import TorporCLI

exit(await TorporMain.run())
